"""What a simulator run observed: the observer `sim run` and `sim fleet` report to, read by the live view
(host_sim/sim/live.py) and the report (host_sim/sim/report.py).

The observer contract (any object with these methods may be passed as `observer=`):

    tap(sim_s, terminal, credential_kind, outcome_text, reason_text, amount_fen, subsidy_fen)
    display(terminal, text, detail)          every display event a board shows
    leds(terminal, state_text)               the lit LEDs ("green", "off", ...)
    link(terminal, state_text)               "up", "down", "coverage gap", ...
    queue(sim_s, terminal, depth)            records journaled and not yet acknowledged
    stored(sim_s, terminal, seq, latency_s)  a record the collector committed, `latency_s` after its tap
    clock(sim_s, start_s, end_s)             simulated time moved

A Timeline keeps each terminal's latest state and aggregates, never every event, so a fleet of thousands
of terminals over a day stays small: taps per terminal per hour, the deepest queue per terminal per time
bucket (BUCKETS buckets over the simulated span), stored records and a bounded sample of latencies per
bucket, declines per reason, revenue and subsidy per group (route, school, gate).  Every method takes a
lock: the live view reads from its own refresh thread while the run writes.

RunWatch turns what `sim run` can see of its virtual boards (their event logs, the collector's database)
into these calls.
"""

import contextlib
import random
import threading
from collections import Counter, deque

BUCKETS = 240  # time buckets over the simulated span: queue depth, throughput and latency over time
LATENCY_SAMPLES = 500  # latencies kept per bucket (a reservoir beyond that)
RECENT = 12  # recent tap lines kept for the live view
REJECTED = ("DECLINED", "SEE DRIVER")
JULIAN_UNIX_EPOCH = 2440587.5


class TerminalState:
    """One terminal's latest state and its own totals."""

    def __init__(self, name, group):
        self.name = name
        self.group = group
        self.text = ""
        self.detail = ""
        self.leds = "off"
        self.link = "-"
        self.depth = 0
        self.max_depth = 0
        self.taps = 0
        self.accepted = 0
        self.declined = 0
        self.stored = 0
        self.revenue_fen = 0
        self.subsidy_fen = 0
        self.latency_sum = 0.0


class Timeline:
    """The observer: latest state per terminal and bounded aggregates over simulated time."""

    def __init__(self, title="", groups=None, origin_s=0, default_group=None):
        """`groups`: terminal name -> group (route) name, else `default_group`, else the terminal's name;
        `origin_s`: the simulated second that is 00:00 of the hour labels (a scenario's midnight; 0 for
        the fleet)."""
        self.title = title
        self.groups = dict(groups or {})
        self.default_group = default_group
        self.origin_s = origin_s
        self.start_s = None
        self.end_s = None
        self.now_s = None
        self.width_s = 1.0
        self.terminals = {}
        self.taps_per_hour = Counter()  # (terminal, bin since origin) -> taps; a bin is tap_bin_s long
        self.tap_bin_s = 3600
        self.queue_max = {}  # terminal -> {bucket: (deepest queue in it, queue at its end)}
        self.stored_per_bucket = Counter()
        self.latency_buckets = {}  # bucket -> [latency_s] (a reservoir of LATENCY_SAMPLES)
        self.latency_seen = Counter()  # bucket -> latencies offered
        self.latency_all = []  # a reservoir over the whole run, for the distribution
        self.latency_count = 0
        self.declines = Counter()  # reason text -> taps
        self.outcomes = Counter()  # outcome text ("PAID", "DECLINED", ...) -> taps
        self.credentials = Counter()
        self.revenue = Counter()  # group -> fen
        self.subsidy = Counter()
        self.collector_counts = {}
        self.recent = deque(maxlen=RECENT)
        self.taps = self.accepted = self.declined = self.stored_count = 0
        self.expected_taps = None
        self.lock = threading.Lock()
        self._rng = random.Random(0)  # the reservoirs' sampling only: no run's outcome depends on it

    # -- the observer contract ------------------------------------------------------------------------

    def clock(self, sim_s, start_s, end_s):
        with self.lock:
            if self.start_s is None:
                self.start_s, self.end_s = start_s, max(end_s, start_s + 1)
                self.width_s = (self.end_s - self.start_s) / BUCKETS
                self.tap_bin_s = tap_bin(self.end_s - self.start_s)
            self.now_s = sim_s

    def tap(self, sim_s, terminal, credential_kind, outcome_text, reason_text, amount_fen, subsidy_fen):
        with self.lock:
            t = self._terminal(terminal)
            t.taps += 1
            self.taps += 1
            self.taps_per_hour[(terminal, int((sim_s - self.origin_s) // self.tap_bin_s))] += 1
            self.credentials[credential_kind] += 1
            self.outcomes[outcome_text.split(" ")[0] if outcome_text else "NO ANSWER"] += 1
            if outcome_text.startswith(REJECTED):
                t.declined += 1
                self.declined += 1
                self.declines[reason_text or outcome_text] += 1
            else:
                t.accepted += 1
                self.accepted += 1
                t.revenue_fen += amount_fen
                t.subsidy_fen += subsidy_fen
                self.revenue[t.group] += amount_fen
                self.subsidy[t.group] += subsidy_fen
            self.recent.append((sim_s, terminal, credential_kind, outcome_text, reason_text))

    def display(self, terminal, text, detail):
        with self.lock:
            t = self._terminal(terminal)
            t.text, t.detail = text, detail

    def leds(self, terminal, state_text):
        with self.lock:
            self._terminal(terminal).leds = state_text

    def link(self, terminal, state_text):
        with self.lock:
            self._terminal(terminal).link = state_text

    def queue(self, sim_s, terminal, depth):
        with self.lock:
            t = self._terminal(terminal)
            t.depth = depth
            t.max_depth = max(t.max_depth, depth)
            per = self.queue_max.setdefault(terminal, {})
            b = self._bucket(sim_s)
            deepest, _ = per.get(b, (depth, depth))
            per[b] = (max(deepest, depth), depth)

    def stored(self, sim_s, terminal, seq, latency_s):
        with self.lock:
            t = self._terminal(terminal)
            t.stored += 1
            t.latency_sum += latency_s
            self.stored_count += 1
            b = self._bucket(sim_s)
            self.stored_per_bucket[b] += 1
            self.latency_seen[b] += 1
            _sample(self._rng, self.latency_buckets.setdefault(b, []), self.latency_seen[b], latency_s)
            self.latency_count += 1
            _sample(self._rng, self.latency_all, self.latency_count, latency_s, LATENCY_SAMPLES * 20)

    # -- beyond the contract: what only `sim run` knows ---------------------------------------------

    def collector(self, **counts):
        """The collector's counters (stored, pending, approved, declined) for the live view."""
        with self.lock:
            self.collector_counts = dict(counts)

    def expect(self, taps):
        """How many taps the run will present (the live view's progress bar)."""
        with self.lock:
            self.expected_taps = taps

    # -- reading --------------------------------------------------------------------------------------

    def snapshot(self, busiest=None):
        """A consistent copy for a reader: counters, and the terminals (the `busiest` by queue depth and
        taps when given).  Aggregates over time are read by the report after the run, lock-free."""
        with self.lock:
            terms = list(self.terminals.values())
            if busiest is not None and len(terms) > busiest:
                terms = sorted(terms, key=lambda t: (-t.depth, -t.max_depth, -t.taps, t.name))[:busiest]
            rows = [dict(vars(t)) for t in terms]
            allterms = self.terminals.values()
            return {
                "title": self.title, "start_s": self.start_s, "end_s": self.end_s, "now_s": self.now_s,
                "taps": self.taps, "expected_taps": self.expected_taps, "accepted": self.accepted,
                "declined": self.declined, "stored": self.stored_count, "collector": dict(self.collector_counts),
                "terminal_count": len(self.terminals), "terminals": rows,
                "links": Counter(t.link for t in allterms),
                "queue_total": sum(t.depth for t in allterms),
                "queue_max": max((t.depth for t in allterms), default=0),
                "latency": percentiles(self.latency_all),
                "recent": list(self.recent),
            }

    def hours(self):
        """The tap bins (hours, or shorter for a short span; since origin) that saw taps, in order."""
        return sorted({h for _, h in self.taps_per_hour})

    def bucket_time(self, b):
        """The simulated second at the middle of bucket `b`, relative to the start."""
        return (b + 0.5) * self.width_s

    def _terminal(self, name):
        t = self.terminals.get(name)
        if t is None:
            t = self.terminals[name] = TerminalState(name, self.groups.get(name, self.default_group or name))
        return t

    def _bucket(self, sim_s):
        if self.start_s is None:
            return 0
        return max(0, min(BUCKETS - 1, int((sim_s - self.start_s) / self.width_s)))


def tap_bin(span_s):
    """Taps are counted per hour, or per a shorter bin when the span has fewer than 6 hours."""
    for seconds in (3600, 1800, 900, 600, 300, 60):
        if span_s >= 6 * seconds:
            return seconds
    return 60


def _sample(rng, kept, seen, value, size=LATENCY_SAMPLES):
    """Reservoir sampling: `kept` stays a uniform sample of the `seen` values offered so far."""
    if len(kept) < size:
        kept.append(value)
    else:
        i = rng.randrange(seen)
        if i < size:
            kept[i] = value


def percentiles(values, keys=(50, 90, 99)):
    """{"p50", "p90", "p99", "max"} of `values` (None when empty), the nearest-rank way fleet.py reports."""
    if not values:
        return {**{"p%d" % k: None for k in keys}, "max": None}
    values = sorted(values)
    out = {"p%d" % k: values[min(len(values) - 1, len(values) * k // 100)] for k in keys}
    out["max"] = values[-1]
    return out


def money_of(text):
    """Fen from a display amount "2.00" (None when it is none)."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or not (frac + "00")[:2].isdigit():
        return None
    return int(whole) * 100 + int((frac + "00")[:2])


class RunWatch:
    """`sim run`'s side of the observer: reads the boards' event logs and the collector's database between
    taps and tells the observer.  Wall-clock latencies stay here and in the observer, never in the digest."""

    def __init__(self, observer, store, accepted_tap_sql, start_s, end_s, taps=None):
        self.observer = observer
        self.store = store
        self.accepted_tap_sql = accepted_tap_sql
        self.start_s, self.end_s = start_s, end_s
        self.terminals = []
        self.by_id = {}
        self.cursor = {}  # terminal name -> events forwarded
        self.lit = {}  # terminal name -> LED colours lit
        self.answered = {}  # (terminal id, seq) -> wall time of the answer
        self.stored_rowid = 0
        self.stored_seqs = {}  # terminal id -> seqs stored
        observer.clock(start_s, start_s, end_s)
        expect = getattr(observer, "expect", None)
        if expect is not None and taps is not None:
            expect(taps)

    def ready(self, terminals):
        """The boards are provisioned: their links are up."""
        self.terminals = terminals
        for t in terminals:
            self.by_id[t.terminal] = t
            self.cursor.setdefault(t.name, 0)
            self.lit.setdefault(t.name, set())
            self.forward(t)
            self.observer.link(t.name, "up")
            self.observer.queue(self.start_s, t.name, 0)

    def tapped(self, now, t, kind, ev, wall):
        """Terminal `t` answered a tap with display event `ev` (at wall time `wall`)."""
        self.forward(t)
        text, detail = ev.get("text", ""), ev.get("detail", "")
        amount = subsidy = 0
        rejected = text.startswith(REJECTED)
        if text.startswith("PAID "):
            amount = money_of(text[5:]) or 0
            if detail.startswith("-"):
                subsidy = money_of(detail[1:].split(" ")[0]) or 0
        self.observer.tap(now, t.name, kind, text, detail if rejected else "", amount, subsidy)
        if not rejected:
            seq = _seq_of(detail)
            if seq is not None:
                self.answered[(t.terminal, seq)] = wall
        self.observer.queue(now, t.name, self._depth(t))

    def power(self, now, t, on):
        self.observer.link(t.name, "up" if on else "power cut")
        if on:
            self.forward(t)

    def poll(self, now, wall):
        """Before the clock moves on from `now`: what the collector stored meanwhile, its counters."""
        rows = self.store.query("SELECT r.rowid, r.terminal, r.seq, r.received FROM records r WHERE r.rowid > ? "
                                "AND " + self.accepted_tap_sql + " ORDER BY r.rowid", (self.stored_rowid,))
        touched = set()
        for rowid, terminal, seq, received in rows:
            self.stored_rowid = max(self.stored_rowid, rowid)
            self.stored_seqs.setdefault(terminal, set()).add(seq)
            t = self.by_id.get(terminal)
            if t is None:
                continue
            answered = self.answered.pop((terminal, seq), None)
            stored_at = (received - JULIAN_UNIX_EPOCH) * 86400 if received is not None else wall
            latency = max(0.0, stored_at - answered) if answered is not None else 0.0
            self.observer.stored(now, t.name, seq, latency)
            touched.add(t)
        for t in self.terminals:
            self.forward(t)
            if t in touched:
                self.observer.queue(now, t.name, self._depth(t))
        counts = getattr(self.observer, "collector", None)
        if counts is not None:
            stored = sum(len(s) for s in self.stored_seqs.values())
            approved, declined = self.store.query(
                "SELECT COALESCE(SUM(approved = 1), 0), COALESCE(SUM(approved = 0), 0) FROM authorisations")[0]
            counts(stored=stored, pending=max(0, stored - approved - declined), approved=approved,
                   declined=declined)

    def clock(self, now):
        self.observer.clock(now, self.start_s, self.end_s)

    def forward(self, t):
        """Every display and LED event terminal `t` showed since the last call."""
        items = t.events.items
        i = self.cursor.get(t.name, 0)
        end = len(items)
        lit = self.lit.setdefault(t.name, set())
        for ev in items[i:end]:
            out = ev.get("out")
            if out == "display":
                self.observer.display(t.name, ev.get("text", ""), ev.get("detail", ""))
            elif out == "led":
                (lit.add if ev.get("on") else lit.discard)(ev.get("color", "?"))
                self.observer.leds(t.name, " ".join(sorted(lit)) or "off")
        self.cursor[t.name] = end

    def _depth(self, t):
        return len(t.accepted - self.stored_seqs.get(t.terminal, set()))


def _seq_of(detail):
    """The record's sequence from a display detail "... #000012"."""
    _, hash_, digits = detail.rpartition("#")
    return int(digits) if hash_ and digits.isdigit() else None


def groups_of(sc):
    """A scenario's terminal name -> its route: the terminal table's name and profile ("route7 (bus)"), or
    the spec's own "group" when the scenario names one."""
    out = {}
    for spec in sc["terminals"]:
        base = spec["name"].rpartition("-")[0] or spec["name"]
        out[spec["name"]] = spec.get("group") or "%s (%s)" % (base, spec["profile"])
    return out


def add_arguments(parser):
    """--live and --report, the same for `sim run` and `sim fleet`."""
    parser.add_argument("--live", action="store_true",
                        help="a live terminal view while the run goes (on stderr with --json, so stdout keeps "
                             "the JSON alone)")
    parser.add_argument("--report", metavar="DIR",
                        help="write an HTML report with plots into DIR (a new or empty directory)")


def cli_observer(command, args, title, groups, origin_s, default_group=None):
    """(Timeline or None, the live view's context manager) for `args`; a report directory that cannot
    take a report raises ValueError with one line, before the run starts."""
    if args.report:
        from host_sim.sim import report
        try:
            report.check_dir(args.report)
        except report.ReportError as e:
            raise ValueError("%s: %s" % (command, e)) from None
    if not (args.live or args.report):
        return None, contextlib.nullcontext()
    tl = Timeline(title, groups, origin_s, default_group)
    if not args.live:
        return tl, contextlib.nullcontext()
    from host_sim.sim import live
    return tl, live.LiveView(tl, stderr=args.json)


def write_report(path, tl, summary):
    from host_sim.sim import report
    report.write(path, tl, summary)
