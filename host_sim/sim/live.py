"""`--live`: a terminal view of a running simulation (rich), drawn from a Timeline a few times a second.

Per terminal: its display (title and detail), lit LEDs, queue depth (records journaled, not yet stored)
and link state; the collector's counters; progress bars of simulated time and of taps.  A fleet larger
than MAX_ROWS terminals shows aggregates and its BUSIEST terminals (deepest queue, then most taps).

Where it goes: stdout, or stderr when the run prints JSON alone (`--json --live`), so the JSON summary is
always the last line of stdout.  When that stream is not a terminal, rich draws nothing while the run
goes and prints the final view once when it stops (before the summary).
"""

import os
import sys

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

MAX_ROWS = 12
BUSIEST = 10
REFRESH_PER_S = 4
NOT_A_TERMINAL_WIDTH = 120
COLUMNS = (("terminal", "name"), ("display", "text"), ("detail", "detail"), ("LEDs", "leds"), ("queue", "depth"),
           ("max queue", "max_depth"), ("link", "link"), ("taps", "taps"), ("stored", "stored"))
NUMBERS = ("queue", "max queue", "taps", "stored")
LINK_STYLE = {"up": "green", "-": "dim"}
LED_STYLE = {"green": "green", "red": "red", "amber": "yellow", "blue": "blue", "purple": "magenta"}


def clock_text(seconds):
    """H:MM:SS of a simulated second since the timeline's origin (midnight for a scenario)."""
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def _progress(label, done, total, right):
    row = Table.grid(padding=(0, 1))
    row.add_column(width=10)
    row.add_column(width=30)
    row.add_column()
    row.add_row(label, ProgressBar(total=max(total, 1), completed=min(done, max(total, 1)), width=30), right)
    return row


def render(timeline, width=None):
    """The view of `timeline` now: a rich renderable."""
    snap = timeline.snapshot(busiest=BUSIEST)
    parts = [Text(snap["title"] or "simulation", style="bold")]
    start, end, now = snap["start_s"], snap["end_s"], snap["now_s"]
    if start is not None:
        now = start if now is None else now
        parts.append(_progress("simulated", now - start, end - start, "%s (%s to %s)"
                               % (clock_text(now - timeline.origin_s), clock_text(start - timeline.origin_s),
                                  clock_text(end - timeline.origin_s))))
    if snap["expected_taps"]:
        parts.append(_progress("taps", snap["taps"], snap["expected_taps"], "%d of %d"
                               % (snap["taps"], snap["expected_taps"])))
    parts.append(_counters(snap))
    parts.append(_terminals(snap))
    if snap["recent"] and snap["terminal_count"] <= MAX_ROWS:
        parts.append(_recent(snap, timeline.origin_s))
    return Group(*parts)


def _counters(snap):
    c = snap["collector"]
    lat = snap["latency"]
    cells = ["taps [bold]%d[/]" % snap["taps"], "accepted [green]%d[/]" % snap["accepted"],
             "declined [red]%d[/]" % snap["declined"],
             "collector stored [bold]%d[/]" % c.get("stored", snap["stored"])]
    if c:
        cells += ["pending authorisations %d" % c.get("pending", 0), "approved %d" % c.get("approved", 0),
                  "issuer declined %d" % c.get("declined", 0)]
    cells.append("queued now %d (deepest %d)" % (snap["queue_total"], snap["queue_max"]))
    if lat["p50"] is not None:
        cells.append("latency p50 %.0f ms p99 %.0f ms" % (lat["p50"] * 1000, lat["p99"] * 1000))
    return Text.from_markup(" · ".join(cells))


def _terminals(snap):
    many = snap["terminal_count"] > MAX_ROWS
    title = "terminals" if not many else "%d busiest of %d terminals (links: %s)" % (
        len(snap["terminals"]), snap["terminal_count"],
        ", ".join("%s %d" % kv for kv in sorted(snap["links"].items())))
    table = Table(title=title, title_justify="left", expand=False)
    rows = snap["terminals"]
    # A protocol-level fleet terminal has no display or LEDs: no empty columns for them.
    shown = [c for c in COLUMNS if c[1] not in ("text", "detail", "leds")
             or any(t[c[1]] not in ("", "off") for t in rows)]
    for head, _ in shown:
        table.add_column(head, no_wrap=True, justify="right" if head in NUMBERS else "left")
    for t in rows:
        cells = []
        for _, key in shown:
            if key == "leds":
                cells.append(Text(t["leds"], style=LED_STYLE.get(t["leds"], "")))
            elif key == "link":
                cells.append(Text(t["link"], style=LINK_STYLE.get(t["link"], "red")))
            else:
                cells.append(str(t[key]))
        table.add_row(*cells)
    return table


def _recent(snap, origin_s):
    table = Table(title="recent taps", title_justify="left", show_header=False, box=None)
    for sim_s, terminal, kind, outcome, reason in reversed(snap["recent"]):
        table.add_row(clock_text(sim_s - origin_s), terminal, kind, outcome, reason)
    return table


class LiveView:
    """A context manager: the live view of `timeline` while the block runs."""

    def __init__(self, timeline, stderr=False, file=None):
        self.timeline = timeline
        out = file if file is not None else (sys.stderr if stderr else sys.stdout)
        # Not a terminal: no width to learn, and the final view is all anyone sees; wide enough to read.
        columns = os.environ.get("COLUMNS", "")
        wide = None if out.isatty() else max(NOT_A_TERMINAL_WIDTH, int(columns) if columns.isdigit() else 0)
        self.console = Console(file=out, width=wide)
        self.live = Live(console=self.console, get_renderable=lambda: render(self.timeline),
                         refresh_per_second=REFRESH_PER_S, redirect_stdout=not stderr and file is None,
                         redirect_stderr=False,
                         vertical_overflow="ellipsis" if self.console.is_terminal else "visible")

    def __enter__(self):
        self.live.start()
        return self

    def __exit__(self, *exc):
        self.live.stop()
        if not self.console.is_terminal:
            self.console.line()  # the final view ends its line before the run's summary
        self.console.file.flush()
        return False
