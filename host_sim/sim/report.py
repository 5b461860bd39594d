"""`--report DIR`: an HTML report of what a run observed (a Timeline), with plots (matplotlib, Agg).

DIR gets index.html (opens in a browser with no network: plain HTML, the plots are PNG files beside it),
summary.json (the run's JSON summary), timeline.json (the numbers behind the table and the plots) and one
PNG per plot:

    taps_per_hour.png     taps per hour per terminal (a heat map when there are more than MANY terminals)
    queue_depth.png       records journaled and not yet stored, over simulated time: every terminal, or the
                          BUSIEST deepest and the deepest of all at each moment
    latency.png           tap-to-stored latency: its distribution, p50/p90/p99 marked
    latency_over_time.png latency p50/p90/p99 over simulated time
    throughput.png        records stored per simulated minute
    revenue_subsidy.png   revenue and subsidy per route (terminal group)
    declines.png          declined taps per reason

Latencies are wall-clock (the host's pace, not the simulated clock), as the fleet's latency_ms are.
"""

import html
import json
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (the backend first)
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator  # noqa: E402

from host_sim.sim.timeline import BUCKETS, percentiles  # noqa: E402

MANY = 12  # more terminals than this: a heat map and the busiest, not one line each
BUSIEST = 8
TABLE_ROWS = 50
DPI = 100
TICK_STEPS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800)
LOG_SPREAD = 50  # latencies spread wider than this factor are plotted on a log axis
PLOTS = ("taps_per_hour", "queue_depth", "latency", "latency_over_time", "throughput", "revenue_subsidy",
         "declines")
TITLES = {
    "taps_per_hour": "Taps per hour per terminal",
    "queue_depth": "Queue depth over time (records journaled, not yet stored)",
    "latency": "Upload latency (tap to stored)",
    "latency_over_time": "Upload latency over time",
    "throughput": "Throughput (records stored)",
    "revenue_subsidy": "Fares and subsidy per route",
    "declines": "Declines per reason",
}


CAPTIONS = {
    "taps_per_hour": "Every tap presented, accepted or declined, by the terminal it was presented to.",
    "queue_depth": "Records a terminal journaled and the collector has not yet stored. In sim run the "
                   "simulated clock stands still while boards work and jumps to the next tap: a record "
                   "uploaded after the next tap's jump shows queued until that tap.",
    "latency": "Wall-clock time from the terminal's answer (sim run) or journal append (sim fleet) to the "
               "collector's commit: the host's pace, not simulated time.",
    "latency_over_time": "The same latency, percentiles per time bucket over the simulated span.",
    "throughput": "Records the collector committed per simulated minute (the wall-clock rate is the "
                  "summary's records_per_s in sim fleet).",
    "revenue_subsidy": "Fares and subsidy of the taps each route's terminals accepted offline; the summary's "
                       "revenue_fen counts only those the issuer then approved.",
    "declines": "Taps the terminal declined, by the reason it showed.",
}


class ReportError(Exception):
    """The report directory cannot be used: one line for the user."""


def check_dir(path):
    """Make sure `path` can take a report before a run starts: new or empty, and writable."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ReportError("--report %s is not a directory" % path)
        if os.listdir(path):
            raise ReportError("--report %s exists and is not empty (a report goes in a new or empty directory)"
                              % path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".probe")
        with open(probe, "w") as f:
            f.write("x")
        os.remove(probe)
    except OSError as e:
        raise ReportError("--report %s cannot be written: %s" % (path, e.strerror or e)) from None


def _hhmm(seconds, _pos=None):
    seconds = int(round(seconds))
    return "%02d:%02d" % (seconds // 3600, seconds // 60 % 60)


def _yuan(fen):
    return "%d.%02d" % divmod(fen, 100)


def terminal_rows(tl):
    """One dict per terminal, busiest (most taps) first: the report's table."""
    rows = []
    for t in tl.terminals.values():
        rows.append({"terminal": t.name, "group": t.group, "taps": t.taps, "accepted": t.accepted,
                     "declined": t.declined, "stored": t.stored, "max_queue": t.max_depth,
                     "mean_latency_ms": round(t.latency_sum / t.stored * 1000, 1) if t.stored else None,
                     "revenue_fen": t.revenue_fen, "subsidy_fen": t.subsidy_fen})
    rows.sort(key=lambda r: (-r["taps"], -r["max_queue"], r["terminal"]))
    return rows


def figures(tl):
    """The numbers behind the plots and the table (timeline.json)."""
    lat = percentiles(tl.latency_all)
    return {
        "title": tl.title,
        "start_s": tl.start_s, "end_s": tl.end_s, "origin_s": tl.origin_s, "bucket_s": tl.width_s,
        "taps": tl.taps, "accepted": tl.accepted, "declined": tl.declined, "stored": tl.stored_count,
        "terminals": terminal_rows(tl),
        "tap_bin_s": tl.tap_bin_s,
        "taps_per_hour": {"%s %s" % (name, _hhmm(h * tl.tap_bin_s)): n
                          for (name, h), n in sorted(tl.taps_per_hour.items())},
        "declines": dict(sorted(tl.declines.items())),
        "outcomes": dict(sorted(tl.outcomes.items())),
        "credentials": dict(sorted(tl.credentials.items())),
        "revenue_fen": dict(sorted(tl.revenue.items())),
        "subsidy_fen": dict(sorted(tl.subsidy.items())),
        "latency_ms": {k: None if v is None else round(v * 1000, 2) for k, v in lat.items()},
        "latency_samples": len(tl.latency_all), "latency_count": tl.latency_count,
    }


def _depth_series(tl, name):
    """Queue depth of terminal `name` per bucket: the deepest seen in it, else where the last one ended."""
    per = tl.queue_max.get(name, {})
    series, last = [], 0
    for b in range(BUCKETS):
        if b in per:
            deepest, last = per[b]
            series.append(deepest)
        else:
            series.append(last)
    return series


def _time_axis(ax, tl):
    span = (tl.end_s or 1) - (tl.start_s or 0)
    step = next((s for s in TICK_STEPS_S if span / s <= 12), TICK_STEPS_S[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(_hhmm))
    ax.set_xlabel("simulated time (HH:MM)")


def _bucket_times(tl):
    return [(tl.start_s or 0) - tl.origin_s + tl.bucket_time(b) for b in range(BUCKETS)]


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=14, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_taps_per_hour(tl, ax):
    hours = tl.hours()
    names = sorted(tl.terminals)
    if not hours:
        return _empty(ax, "no taps")
    labels = [_hhmm(h * tl.tap_bin_s) for h in hours]
    if len(names) <= MANY:
        bottom = [0] * len(hours)
        for name in names:
            counts = [tl.taps_per_hour.get((name, h), 0) for h in hours]
            ax.bar(range(len(hours)), counts, bottom=bottom, label=name)
            bottom = [a + b for a, b in zip(bottom, counts)]
        ax.set_xticks(range(len(hours)), labels, rotation=45 if len(hours) > 12 else 0)
        ax.set_ylabel("taps")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, ncol=min(4, len(names)))
    else:
        grid = [[tl.taps_per_hour.get((name, h), 0) for h in hours] for name in names]
        im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0)
        ax.set_xticks(range(len(hours)), labels, rotation=45 if len(hours) > 12 else 0)
        step = max(1, len(names) // 10)
        ax.set_yticks(range(0, len(names), step), [names[i] for i in range(0, len(names), step)], fontsize=8)
        ax.set_ylabel("terminal (%d)" % len(names))
        ax.figure.colorbar(im, ax=ax, label="taps")
    ax.set_xlabel("simulated time (start of each %s)" % _bin_name(tl.tap_bin_s))


def _bin_name(seconds):
    return "hour" if seconds == 3600 else "%d minutes" % (seconds // 60)


def taps_title(tl):
    return "Taps per %s per terminal" % _bin_name(tl.tap_bin_s)


def plot_queue_depth(tl, ax):
    if not tl.queue_max:
        return _empty(ax, "no queue observed")
    times = _bucket_times(tl)
    names = sorted(tl.queue_max)
    if len(names) <= MANY:
        shown = names
    else:
        shown = sorted(names, key=lambda n: (-tl.terminals[n].max_depth, n))[:BUSIEST]
        deepest = [max(col) for col in zip(*(_depth_series(tl, n) for n in names))]
        ax.step(times, deepest, where="mid", color="black", linewidth=2, label="deepest of all %d" % len(names))
    for name in shown:
        ax.step(times, _depth_series(tl, name), where="mid", label=name, alpha=0.8)
    ax.set_ylabel("records queued (deepest per %s)" % _span(tl.width_s))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    _time_axis(ax, tl)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1),
              title=None if len(names) <= MANY else "the %d deepest" % len(shown))


def _span(seconds):
    return "%.0f s" % seconds if seconds < 120 else "%.0f min" % (seconds / 60)


def plot_latency(tl, ax):
    values = [v * 1000 for v in tl.latency_all]
    if not values:
        return _empty(ax, "no record stored")
    bins = min(60, max(10, len(values) // 5))
    low, high = min(values), max(values)
    if low > 0 and high > LOG_SPREAD * low:
        # a few slow outliers (a board reconnecting) would squeeze the rest into one bar: log-spaced bins
        ax.set_xscale("log")
        bins = [low * (high / low) ** (i / bins) for i in range(bins + 1)]
    ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
    lat = percentiles(values)
    for key, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        ax.axvline(lat[key], color="tab:red", linestyle=style, label="%s %.1f ms" % (key, lat[key]))
    ax.set_xlabel("tap to stored, wall ms%s" % ("" if tl.latency_count == len(values) else
                                                " (a sample of %d of %d)" % (len(values), tl.latency_count)))
    ax.set_ylabel("records")
    ax.legend()


def plot_latency_over_time(tl, ax):
    if not tl.latency_buckets:
        return _empty(ax, "no record stored")
    times = _bucket_times(tl)
    buckets = sorted(tl.latency_buckets)
    for key, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        ax.plot([times[b] for b in buckets], [percentiles(tl.latency_buckets[b])[key] * 1000 for b in buckets],
                linestyle=style, marker="." if len(buckets) < 60 else None, label=key)
    ax.set_ylabel("tap to stored, wall ms")
    ax.set_ylim(bottom=0)
    _time_axis(ax, tl)
    ax.legend()


def plot_throughput(tl, ax):
    if not tl.stored_per_bucket:
        return _empty(ax, "no record stored")
    times = _bucket_times(tl)
    per_min = [tl.stored_per_bucket.get(b, 0) * 60 / tl.width_s for b in range(BUCKETS)]
    ax.fill_between(times, per_min, step="mid", alpha=0.4)
    ax.step(times, per_min, where="mid")
    ax.set_ylabel("records stored per simulated minute")
    ax.set_ylim(bottom=0)
    _time_axis(ax, tl)


def plot_revenue_subsidy(tl, ax):
    groups = sorted(set(tl.revenue) | set(tl.subsidy))
    if not groups:
        return _empty(ax, "no accepted tap")
    x = range(len(groups))
    rev = [tl.revenue.get(g, 0) / 100 for g in groups]
    sub = [tl.subsidy.get(g, 0) / 100 for g in groups]
    bars = ax.bar([i - 0.2 for i in x], rev, width=0.4, label="fares")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    bars = ax.bar([i + 0.2 for i in x], sub, width=0.4, label="subsidy")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(list(x), groups)
    ax.set_ylabel("yuan")
    ax.legend()


def plot_declines(tl, ax):
    if not tl.declines:
        return _empty(ax, "no declines")
    reasons = sorted(tl.declines, key=lambda r: (tl.declines[r], r))
    bars = ax.barh(range(len(reasons)), [tl.declines[r] for r in reasons], color="tab:red")
    ax.bar_label(bars, fontsize=9)
    ax.set_yticks(range(len(reasons)), reasons)
    ax.set_xlabel("declined taps")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


PLOTTERS = {"taps_per_hour": plot_taps_per_hour, "queue_depth": plot_queue_depth, "latency": plot_latency,
            "latency_over_time": plot_latency_over_time, "throughput": plot_throughput,
            "revenue_subsidy": plot_revenue_subsidy, "declines": plot_declines}


def _height(tl, name):
    if name == "taps_per_hour" and len(tl.terminals) > MANY:
        return 6.5
    if name == "declines":
        return max(2.5, 0.5 * len(tl.declines) + 1.5)
    return 4.0


def write(path, tl, summary):
    """Write the report of timeline `tl` and JSON `summary` into directory `path` (check_dir'd)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    numbers = figures(tl)
    with open(os.path.join(path, "timeline.json"), "w") as f:
        json.dump(numbers, f, indent=2)
    for name in PLOTS:
        fig, ax = plt.subplots(figsize=(10, _height(tl, name)), dpi=DPI)
        try:
            PLOTTERS[name](tl, ax)
            ax.set_title(taps_title(tl) if name == "taps_per_hour" else TITLES[name])
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            fig.savefig(os.path.join(path, name + ".png"))
        finally:
            plt.close(fig)
    with open(os.path.join(path, "index.html"), "w", encoding="utf-8") as f:
        f.write(_html(tl, summary, numbers))


def _html(tl, summary, numbers):
    e = html.escape
    title = tl.title or "simulation"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>%s</title>" % e(title),
           "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
           "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
           "td:first-child,th:first-child,td.l{text-align:left}img{max-width:100%;border:1px solid #eee}"
           "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style>", "</head><body>",
           "<h1>%s</h1>" % e(title)]
    out.append("<p>Simulated %s to %s; %d taps, %d accepted, %d declined, %d stored on %d terminals.</p>"
               % (_hhmm((tl.start_s or 0) - tl.origin_s), _hhmm((tl.end_s or 0) - tl.origin_s), numbers["taps"],
                  numbers["accepted"], numbers["declined"], numbers["stored"], len(numbers["terminals"])))
    out.append("<h2>Summary</h2><table>")
    for key, value in summary.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        out.append('<tr><th>%s</th><td class="l">%s</td></tr>' % (e(key), e(text)))
    out.append("</table>")
    rows = numbers["terminals"]
    out.append("<h2>Terminals</h2>")
    if len(rows) > TABLE_ROWS:
        out.append("<p>The %d busiest of %d terminals (all of them in timeline.json).</p>" % (TABLE_ROWS, len(rows)))
    cols = ("terminal", "group", "taps", "accepted", "declined", "stored", "max_queue", "mean_latency_ms",
            "revenue_fen", "subsidy_fen")
    heads = ("terminal", "route", "taps", "accepted", "declined", "stored", "max queue", "mean latency ms",
             "fares yuan", "subsidy yuan")
    out.append('<table id="terminals"><tr>%s</tr>' % "".join("<th>%s</th>" % h for h in heads))
    for r in rows[:TABLE_ROWS] + [_totals(rows)]:
        cells = []
        for c in cols:
            v = r[c]
            if c in ("revenue_fen", "subsidy_fen"):
                v = _yuan(v)
            cells.append('<td%s>%s</td>' % (' class="l"' if c == "group" else "", e("-" if v is None else str(v))))
        out.append("<tr>%s</tr>" % "".join(cells))
    out.append("</table>")
    if tl.declines:
        out.append('<h2>Declines</h2><table id="declines"><tr><th>reason</th><th>taps</th></tr>')
        for reason, n in sorted(tl.declines.items()):
            out.append("<tr><td>%s</td><td>%d</td></tr>" % (e(reason), n))
        out.append("</table>")
    for name in PLOTS:
        head = taps_title(tl) if name == "taps_per_hour" else TITLES[name]
        out.append('<h2>%s</h2><p>%s</p><img src="%s.png" alt="%s">' % (e(head), e(CAPTIONS[name]), name, e(head)))
    out.append("<h2>Files</h2><p><a href=\"summary.json\">summary.json</a> (the run's JSON line), "
               "<a href=\"timeline.json\">timeline.json</a> (the numbers behind the table and plots).</p>")
    out.append("<h2>summary.json</h2><pre>%s</pre>" % e(json.dumps(summary, indent=2)))
    out.append("</body></html>\n")
    return "\n".join(out)


def _totals(rows):
    total = {"terminal": "all", "group": "", "mean_latency_ms": None}
    for c in ("taps", "accepted", "declined", "stored", "revenue_fen", "subsidy_fen"):
        total[c] = sum(r[c] for r in rows)
    total["max_queue"] = max((r["max_queue"] for r in rows), default=0)
    return total
