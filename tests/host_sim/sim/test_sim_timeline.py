"""The simulator's observer (host_sim/sim/timeline.py): what it keeps of synthetic events, that it stays
bounded for a big fleet, that `sim run`'s RunWatch turns board events and stored rows into observer calls,
and that the live view draws from it."""

import io

from rich.console import Console

from host_sim.sim import live, timeline


def _day():
    """Two buses on route 7 and a gate, over 06:00-10:00 (origin: midnight 0)."""
    tl = timeline.Timeline("a day", groups={"bus-1": "route7", "bus-2": "route7", "gate-1": "scenic"})
    tl.clock(6 * 3600, 6 * 3600, 10 * 3600)
    tl.tap(6 * 3600 + 10, "bus-1", "cpm", "PAID 2.00", "", 200, 0)
    tl.tap(6 * 3600 + 20, "bus-1", "cpm", "PAID 1.50", "", 150, 50)
    tl.tap(7 * 3600 + 5, "bus-2", "expired", "DECLINED", "card expired", 0, 0)
    tl.tap(7 * 3600 + 9, "gate-1", "garbage", "SEE DRIVER", "unknown code", 0, 0)
    tl.tap(9 * 3600, "gate-1", "cpm", "PAID 30.00", "", 3000, 0)
    tl.queue(6 * 3600 + 10, "bus-1", 1)
    tl.queue(6 * 3600 + 20, "bus-1", 2)
    tl.stored(6 * 3600 + 30, "bus-1", 1, 0.1)
    tl.queue(6 * 3600 + 30, "bus-1", 1)
    tl.stored(6 * 3600 + 40, "bus-1", 2, 0.3)
    tl.queue(6 * 3600 + 40, "bus-1", 0)
    tl.stored(9 * 3600 + 1, "gate-1", 1, 0.2)
    return tl


def test_a_timeline_counts_taps_declines_money_and_latency_per_terminal_and_route():
    tl = _day()
    assert (tl.taps, tl.accepted, tl.declined, tl.stored_count) == (5, 3, 2, 3)
    assert tl.tap_bin_s == 1800  # a 4-hour span: half-hour bins
    assert tl.taps_per_hour[("bus-1", 12)] == 2 and tl.taps_per_hour[("gate-1", 18)] == 1
    assert tl.declines == {"card expired": 1, "unknown code": 1}
    assert tl.revenue == {"route7": 350, "scenic": 3000} and tl.subsidy == {"route7": 50, "scenic": 0}
    bus = tl.terminals["bus-1"]
    assert (bus.taps, bus.accepted, bus.stored, bus.max_depth, bus.depth) == (2, 2, 2, 2, 0)
    assert sorted(tl.latency_all) == [0.1, 0.2, 0.3]
    assert timeline.percentiles(tl.latency_all)["p50"] == 0.2
    # The 10 s taps and their stores fall in one 60 s bucket: deepest 2, and it ended empty.
    assert tl.queue_max["bus-1"] == {0: (2, 0)}
    assert [r[1] for r in tl.recent] == ["bus-1", "bus-1", "bus-2", "gate-1", "gate-1"]


def test_a_big_fleet_keeps_bounded_samples_and_shows_its_busiest():
    tl = timeline.Timeline("fleet", default_group="fleet")
    tl.clock(0, 0, 3600)
    for i in range(50):
        tl.queue(10, "T%04d" % i, i % 7)
    for n in range(30000):
        tl.stored(n % 3600, "T%04d" % (n % 50), n, n / 1000)
    assert tl.latency_count == 30000
    assert len(tl.latency_all) == timeline.LATENCY_SAMPLES * 20
    assert all(len(v) <= timeline.LATENCY_SAMPLES for v in tl.latency_buckets.values())
    assert sum(tl.stored_per_bucket.values()) == 30000
    snap = tl.snapshot(busiest=10)
    assert snap["terminal_count"] == 50 and len(snap["terminals"]) == 10
    assert [t["depth"] for t in snap["terminals"]] == [6] * 7 + [5] * 3
    assert snap["queue_max"] == 6 and snap["queue_total"] == sum(i % 7 for i in range(50))
    assert tl.terminals["T0001"].group == "fleet"


def test_taps_are_binned_per_hour_for_a_day_and_shorter_for_a_short_span():
    assert timeline.tap_bin(12 * 3600) == 3600
    assert timeline.tap_bin(3600) == 600
    assert timeline.tap_bin(60) == 60


class _Events:
    def __init__(self):
        self.items = []


class _Board:
    def __init__(self, name, ident):
        self.name = name
        self.terminal = ident
        self.events = _Events()
        self.accepted = set()


class _Store:
    """Answers RunWatch's two queries: stored rows after a rowid, and the issuer's decisions."""

    def __init__(self):
        self.rows = []
        self.approved = self.declined = 0

    def query(self, sql, args=()):
        if "FROM records" in sql:
            return [r for r in self.rows if r[0] > args[0]]
        return [(self.approved, self.declined)]


def test_run_watch_forwards_board_events_and_the_collectors_rows():
    tl = timeline.Timeline("run", origin_s=0)
    store = _Store()
    watch = timeline.RunWatch(tl, store, "1", 1000, 2000, taps=3)
    bus = _Board("bus-1", "5642000001")
    bus.events.items += [{"out": "display", "text": "READY", "detail": "show your code"},
                         {"out": "led", "color": "amber", "on": True}]
    watch.ready([bus])
    assert tl.terminals["bus-1"].link == "up" and tl.terminals["bus-1"].leds == "amber"
    assert tl.expected_taps == 3
    ev = {"out": "display", "text": "PAID 1.50", "detail": "-0.50 #000007"}
    bus.events.items += [{"out": "led", "color": "amber", "on": False}, {"out": "led", "color": "green", "on": True},
                         ev]
    bus.accepted.add(7)
    watch.tapped(1100, bus, "cpm", ev, wall=500.0)
    state = tl.terminals["bus-1"]
    assert (state.text, state.detail, state.leds, state.depth) == ("PAID 1.50", "-0.50 #000007", "green", 1)
    assert tl.revenue == {"bus-1": 150} and tl.subsidy == {"bus-1": 50}
    declined = {"out": "display", "text": "DECLINED", "detail": "card expired"}
    bus.events.items.append(declined)
    watch.tapped(1150, bus, "expired", declined, wall=501.0)
    assert tl.declines == {"card expired": 1}
    # Stored 0.25 s after the answer (julian day of UNIX second 500.25).
    store.rows.append((1, "5642000001", 7, timeline.JULIAN_UNIX_EPOCH + 500.25 / 86400))
    store.approved = 1
    watch.poll(1150, wall=501.0)
    assert state.stored == 1 and state.depth == 0
    assert abs(tl.latency_all[0] - 0.25) < 0.01
    assert tl.collector_counts == {"stored": 1, "pending": 0, "approved": 1, "declined": 0}
    watch.power(1150, bus, False)
    assert state.link == "power cut"
    watch.power(1150, bus, True)
    assert state.link == "up"


def test_the_live_view_shows_each_terminal_or_the_busiest_of_a_fleet():
    tl = _day()
    tl.display("bus-1", "PAID 1.50", "-0.50 #000002")
    tl.leds("bus-1", "green")
    tl.link("bus-2", "coverage gap")
    tl.collector(stored=3, pending=1, approved=2, declined=0)
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(live.render(tl))
    text = console.export_text()
    for want in ("bus-1", "bus-2", "gate-1", "PAID 1.50", "-0.50 #000002", "green", "coverage gap",
                 "pending authorisations 1", "simulated", "card expired"):
        assert want in text, want
    fleet = timeline.Timeline("fleet")
    fleet.clock(0, 0, 600)
    for i in range(40):
        fleet.link("T%04d" % i, "up")
        fleet.queue(5, "T%04d" % i, 1 if i == 33 else 0)
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(live.render(fleet))
    text = console.export_text()
    assert "10 busiest of 40 terminals (links: up 40)" in text
    assert "T0033" in text and "display" not in text  # no empty display/LED columns for a fleet


def test_the_live_view_written_to_a_file_ends_with_its_final_state():
    tl = _day()
    out = io.StringIO()
    with live.LiveView(tl, file=out):
        tl.tap(9 * 3600 + 5, "bus-2", "cpm", "PAID 2.00", "", 200, 0)
    text = out.getvalue()
    assert "taps 6" in text and text.endswith("\n")
