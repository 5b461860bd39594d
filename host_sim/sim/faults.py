"""Faults of a `sim run` scenario: what goes wrong, where and when, checked before the run and applied
at simulated times.

    [[faults]]
    kind = "coverage_gap"        # the terminal's link is down from `at` until `until`
    terminal = "route7-1"        # a terminal's name, or "all"
    at = "11:10"
    until = "11:40"

    kind = "power_cut"           terminal, at: the first tap at or after `at` is answered, then the cut
    kind = "coverage_gap"        terminal or "all", at, until: cellular: the modem loses registration
                                 (no network); serial: the collector stops serving that line (bytes lost)
    kind = "modem_fault"         terminal (a cellular one), at, fault (host_sim/emulators/modem FAULTS),
                                 value (default 1), until (optional: the fault is cleared then)
    kind = "collector_crash"     at, until: every link's serving stops abruptly (connections dropped,
                                 sessions lost, nothing acknowledged) and comes back at `until`
    kind = "acquirer_outage"     at, until: the acquirer does not answer; transactions stay pending and
                                 are decided once it is back

Taps are presented in time order; a fault's start and end are applied before the first tap at or
after their time (and the ones left after the last tap before the run's final wait).  Nothing the
collector records depends on when a fault lands in the host's time: terminals decide taps offline, the
collector de-duplicates by (terminal, sequence) and the issuer's rules are deterministic."""

from host_sim.emulators.modem import FAULTS as MODEM_FAULTS

KINDS = ("power_cut", "coverage_gap", "modem_fault", "collector_crash", "acquirer_outage")
# kind -> (terminal: "one" | "one or all" | "none", until: "required" | "optional" | "no")
RULES = {
    "power_cut": ("one", "no"),
    "coverage_gap": ("one or all", "required"),
    "modem_fault": ("one", "optional"),
    "collector_crash": ("none", "required"),
    "acquirer_outage": ("none", "required"),
}
ALL = "all"


def parse(where, i, f, midnight, day, terminals, clock):
    """The checked fault dict of [[faults]] table `i`: kind, terminal (a name, "all" or None), at_s,
    until_s (if it ends), fault and value (modem_fault).  `day` is (first run start, last run end) in
    seconds after midnight; `terminals` {name: terminal dict}; `clock` parses "HH:MM"."""
    kind = f["kind"]
    if kind not in KINDS:
        raise where.error("faults", i, "kind", "%r is not one of %s" % (kind, ", ".join(KINDS)))
    who, until_rule = RULES[kind]
    terminal = f.get("terminal")
    if who == "none":
        if terminal not in (None, ALL):
            raise where.error("faults", i, "terminal", "a %s hits every terminal: leave terminal out (or \"all\")"
                              % kind)
        terminal = None
    elif terminal is None:
        raise where.error("faults", i, "terminal", "is missing (a terminal's name%s)"
                          % (' or "all"' if who == "one or all" else ""))
    elif terminal == ALL and who == "one":
        raise where.error("faults", i, "terminal", "a %s hits one terminal: name it" % kind)
    elif terminal != ALL and terminal not in terminals:
        raise where.error("faults", i, "terminal", "no terminal %r (the scenario has %s)"
                          % (terminal, ", ".join(sorted(terminals))))
    times = {}
    for key in ("at", "until"):
        if key not in f:
            continue
        t = clock(f[key])
        if t is None:
            raise where.error("faults", i, key, "%r is not a time HH:MM" % f[key])
        if key == "at" and not day[0] <= t <= day[1]:  # an end may come after service (the same day)
            raise where.error("faults", i, key, "%s is outside the scenario's day (%s to %s)"
                              % (f[key], _hhmm(day[0]), _hhmm(day[1])))
        times[key] = t
    if until_rule == "required" and "until" not in times:
        raise where.error("faults", i, "until", "is missing (a %s ends: when?)" % kind)
    if until_rule == "no" and "until" in times:
        raise where.error("faults", i, "until", "a %s has no end" % kind)
    if "until" in times and times["until"] <= times["at"]:
        raise where.error("faults", i, "until", "%s is not after at (%s)" % (f["until"], f["at"]))
    out = {"kind": kind, "terminal": terminal, "at_s": midnight + times["at"]}
    if "until" in times:
        out["until_s"] = midnight + times["until"]
    if kind == "modem_fault":
        name = f.get("fault")
        if name not in MODEM_FAULTS:
            raise where.error("faults", i, "fault", "%r is not a modem fault (known: %s)"
                              % (name, ", ".join(MODEM_FAULTS)))
        if terminals[terminal]["uplink"] != "cellular":
            raise where.error("faults", i, "terminal", "%s has a %s uplink: a modem fault needs a cellular one"
                              % (terminal, terminals[terminal]["uplink"]))
        value = f.get("value", 1)
        out["fault"] = name
        out["value"] = int(value) if float(value).is_integer() else value
    else:
        for key in ("fault", "value"):
            if key in f:
                raise where.error("faults", i, key, "only a modem_fault has a %s" % key)
    return out


def _hhmm(seconds):
    return "%02d:%02d" % (seconds // 3600, seconds // 60 % 60)


class Schedule:
    """The scenario's faults as start and end events in time order; `due(t)` takes those at or before t.
    Power cuts are left to the run (they land after a tap's answer)."""

    def __init__(self, faults):
        events = []
        for n, f in enumerate(faults):
            if f["kind"] == "power_cut":
                continue
            events.append((f["at_s"], 1, n, "start", f))
            if "until_s" in f:
                events.append((f["until_s"], 0, n, "end", f))
        self.events = sorted(events, key=lambda e: e[:3])  # at equal times, ends before starts

    def due(self, t):
        """[(phase, fault)] whose time is <= t, in order, removed from the schedule."""
        n = 0
        while n < len(self.events) and self.events[n][0] <= t:
            n += 1
        taken, self.events = self.events[:n], self.events[n:]
        return [(e[3], e[4]) for e in taken]

    def rest(self):
        """Every event left (the run's end)."""
        taken, self.events = self.events, []
        return [(e[3], e[4]) for e in taken]


class Injector:
    """Applies fault events to a run's links (links.py Links) and acquirer; counts what was applied."""

    def __init__(self, links, acquirer_link, observer=None, settle=None):
        self.links = links
        self.settle = settle  # () -> None: waits until what the simulated minutes before allowed happened
        self.acquirer = acquirer_link
        self.observer = observer
        self.counts = {}
        self.gaps = {}  # terminal name -> open coverage gaps (they may overlap)
        self.crashes = 0  # collector crashes under way (they may overlap)
        self.offline_taps = 0  # taps presented while their terminal had no collector to reach
        self.pending_at_return = 0  # transactions the acquirer found waiting when it came back

    def reachable(self, name):
        """True while terminal `name` can reach the collector."""
        return not self.crashes and not self.gaps.get(name, 0)

    def tap(self, name):
        """A tap is presented on terminal `name` (counted if its link is down)."""
        if not self.reachable(name):
            self.offline_taps += 1

    def apply(self, phase, f):
        """Apply one start or end, once the run is quiet: a link about to fail has uploaded what it held
        and the acquirer about to fail has decided what was stored (the simulated time before the fault
        allowed that), so where the fault lands does not depend on the host's pace.  A collector crash
        does not wait: it lands where the uploads are, mid-batch when a backlog is on its way."""
        kind = f["kind"]
        if self.settle is not None and not (kind == "collector_crash" and phase == "start"):
            self.settle()
        if phase == "start":
            self.counts[kind] = self.counts.get(kind, 0) + 1
        names = self.links.names() if f["terminal"] in (ALL, None) else [f["terminal"]]
        if kind == "coverage_gap":
            for name in names:
                before = self.gaps.get(name, 0)
                self.gaps[name] = before + (1 if phase == "start" else -1)
                if phase == "start" and before == 0:
                    self.links.get(name).coverage(False)
                    self._link(name, "coverage gap")
                elif phase == "end" and self.gaps[name] == 0:
                    self.links.get(name).coverage(True)
                    self._link(name, "up" if not self.crashes else "collector down")
        elif kind == "modem_fault":
            link = self.links.get(f["terminal"])
            if phase == "start":
                link.modem_fault(f["fault"], f["value"])
            else:
                link.modem_fault(f["fault"], None)
        elif kind == "collector_crash":
            self.crashes += 1 if phase == "start" else -1
            if phase == "start" and self.crashes == 1:
                self.links.crash()
                for name in names:
                    self._link(name, "collector down")
            elif phase == "end" and self.crashes == 0:
                self.links.restart()
                for name in names:
                    self._link(name, "up" if not self.gaps.get(name, 0) else "coverage gap")
        elif kind == "acquirer_outage":
            if phase == "end":
                self.pending_at_return += len(self.links.store.pending_records())
            self.acquirer.set_down(phase == "start")

    def _link(self, name, state):
        if self.observer is not None:
            self.observer.link(name, state)
