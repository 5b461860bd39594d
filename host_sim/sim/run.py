"""`sim run SCENARIO.toml [--seed N] [--json] [--live] [--report DIR]`: a scenario on full virtual boards, on a
virtual clock.

The boards, their uplinks to one collector (SQLite, every stored transaction authorised by the issuer
simulation) and the passengers' phones are the demo's (host_sim/demo.py).  The seed fixes every
passenger: who boards where and when, with which credential, and each code's unpredictable number and
counter.  Taps are presented one at a time in simulated-time order, each after its answer, so the same
scenario and seed give the same records and decisions.

What is virtual: the board's clock (board.time_s, hardware/boards/virtual.py ZF_CLOCK) reads the
simulator's clock, which jumps from tap to tap, so records carry simulated times and expiry and daily
counters follow the simulated day; time.ticks_ms (host_sim/device/simclock/time.py, put first on the
board's path) is the host's ticks plus every second the simulator's clock has moved, so asyncio timers
and the declines' 30 s coalescing window (firmware/declines.py) see the simulated gaps between taps.
What is not: the time between jumps (a tap's decision, its upload) runs at the host's pace, ticks_us
and blocking time.sleep_ms stay real, and a jump times out a link exchange in flight: the collector may
log "refused: bad proof" for a handshake the terminal abandoned, and the terminal reconnects.  Taps are
presented one at a time, each after its answer, so none of that changes what is recorded.

`--live` and `--report DIR` watch the run through an observer (host_sim/sim/timeline.py): the boards'
display and LED events and the collector's stored rows, read between taps; watching changes nothing the
run records.  The live view goes to stderr with `--json`, so stdout holds the JSON alone.

The last line printed is the JSON summary; `digest` is a SHA-256 of the collector's stored records
(terminal, seq, time, kind, amount, currency, decision, reason, fare, ATC, token) and the issuer's
decisions.  The fleet token key and the terminals' device keys come from the seed (host_sim/sim/passengers.py
Kit), so tokens and the promotions' draws repeat too.  Raw bytes are left out: the card data in them is
sealed under epoch keys each board draws at random, as in the field.

What the host's pace can still change: a payment code is decided online, so whether its terminal's session is
up when it is shown sets its decline reason ("no answer" or "network needed").  The run waits for the session
where it knows one is renewed (after a power cut, before a jump while a modem link comes up, and up to
passengers.SETTLE_S after the clock moved); a renewal it does not foresee would still show in the digest.
"""

import hashlib
import json
import os
import sys
import tempfile
import threading
import time

from host_sim import demo
from host_sim.backend import acquirer
from host_sim.backend.backoffice import Backoffice
from host_sim.backend.store import ACCEPTED_TAP, Store
from host_sim.sim import faults as fault_kinds
from host_sim.sim import links as sim_links
from host_sim.sim import passengers
from host_sim.sim import scenario as scenarios
from host_sim.sim import timeline as timelines
from host_sim.sim import trace as tracing
from protocol import record

UID_BASE = 5642000001
MAX_BACKOFF_S = 2.0  # the authorisation worker's longest wait after an acquirer outage (host seconds)
JUMP_QUIET_S = 10  # at most this long before a jump of the clock for the modem links to be quiet
SETTLE_S = 60  # at most this long before a fault for the uploads and decisions before it (host seconds)
DRAIN_S = 120  # after the last tap: backlogs upload (a modem link reconnects slowly), transactions decided
RENEW_S = 60  # at most this long for a terminal back from a power cut to greet the collector (host seconds)


class Clock:
    """The simulator's clock, shared by every board: a file replaced whole as time advances."""

    def __init__(self, path, start):
        self.path = path
        self.now = start
        self.set(start)

    def set(self, seconds):
        self.now = seconds
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d" % seconds)
        os.replace(tmp, self.path)


def schedule(sc, seed):
    """Every tap of the day, in time order: (time_s, terminal index, credential, payload, stop index)
    (host_sim/sim/passengers.py)."""
    return passengers.schedule(sc, seed)


def digest(store):
    h = hashlib.sha256()
    for row in store.query("SELECT terminal, seq, time, kind, amount, currency, decision, reason, fare_id, "
                           "hex(atc), hex(token) FROM records ORDER BY terminal, seq"):
        h.update(repr(tuple(row)).encode())
    for row in store.query("SELECT terminal, seq, approved, reason FROM authorisations ORDER BY terminal, seq"):
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def declines(store):
    """Declined taps the collector holds, by reason text (the terminal journals and uploads them too)."""
    rows = store.query("SELECT reason, COUNT(*) FROM records WHERE decision = ? GROUP BY reason ORDER BY reason",
                       (record.DECLINED,))
    return {record.REASON_TEXT.get(reason, "reason %d" % reason): n for reason, n in rows}


class Progress:
    """How far a run got, for the summary and for a Ctrl-C."""

    def __init__(self, total, start):
        self.total = total
        self.presented = 0
        self.power_cuts = 0
        self.simulated = start


def _power_cut(t):
    """kill -9 right after an answer: the journal holds the tap, its upload may not have gone yet.  (A cut
    while the terminal decides is the demo's; where it lands is the host's timing, not the scenario's.)"""
    mark = t.board.console_mark()
    t.board.power_cut()
    t.link.power_cut()  # a modem on the terminal's supply loses power with it
    t.board.power_on()
    t.board.wait_console(b"ready:", timeout=30, since=mark)


def simulate(sc, seed, workdir, progress_cb=None, observer=None, record_dir=None, trace_dir=None):
    """Run scenario `sc` (scenario.parse) with `seed` in `workdir`; the summary dict.  `observer` hears
    link changes (host_sim/sim/timeline.py's contract); `record_dir` gets a capture file per terminal link,
    `trace_dir` each board's console and modem UART (host_sim/sim/trace.py)."""
    start_wall = time.monotonic()
    taps = schedule(sc, seed)
    progress = Progress(len(taps), sc["runs"][0])
    if progress_cb:
        progress_cb(progress)
    db = os.path.join(workdir, "collector.db")
    store = Store(db)
    issuer = sim_links.OutageLink(acquirer.Acquirer())  # an acquirer outage silences it
    office = Backoffice(store, issuer)
    stop = threading.Event()
    worker = threading.Thread(target=office.run_authorisations, args=(stop, 0.2, MAX_BACKOFF_S), daemon=True)
    worker.start()
    clock = Clock(os.path.join(workdir, "clock"), sc["runs"][0])
    kit = passengers.Kit(sc, workdir, store, seed)
    office.bundles = kit.shelf
    kit.block_cards()
    links = sim_links.Links(store, office, clock, record_dir, seed)
    trace = None if trace_dir is None else tracing.Trace(trace_dir, clock, sc["midnight"])
    planned = fault_kinds.Schedule(sc["faults"])
    terminals = []

    def stored():
        return {(r[0], r[1]) for r in store.query("SELECT terminal, seq FROM records r WHERE " + ACCEPTED_TAP)}

    def stored_declines():
        return {(r[0], r[1]) for r in store.query("SELECT terminal, seq FROM records WHERE decision = ?",
                                                  (record.DECLINED,))}

    def settle(cellular_only=False):
        """Before a fault: every accepted tap of a terminal that reaches the collector stored there, and
        decided while the acquirer answers.  Before a jump of the clock (`cellular_only`): the cellular
        terminals' uploads done and no modem in the middle of a send, for a jump times out what the modem
        driver waits for: a send it gives up costs a filler, a wait for quiet and a reconnect, and a link
        still coming up loses the AT probes a modem has not answered yet (they count ticks; a reply already on
        the line is kept, firmware/drivers/modem.py LATE_MS), each at a moment set by the host's timing, not
        by the scenario, and the run would no longer repeat.  So it also waits for every reachable cellular
        terminal's socket to be open."""
        reachable = {t.name for t in terminals if injector.reachable(t.name)}
        due = {(t.terminal, seq) for t in terminals if t.name in reachable for seq in t.accepted
               if not cellular_only or t.spec["uplink"] == "cellular"}
        try:
            if cellular_only:
                demo._wait("the modem uploads before a jump of the clock",
                           lambda: due <= stored() and links.modems_idle(reachable), timeout=JUMP_QUIET_S)
            else:
                demo._wait("the uploads and decisions before a fault", lambda: due <= stored() and (
                    issuer.down or not store.pending_records()), timeout=SETTLE_S)
        except TimeoutError:  # a link slow to come back: the run goes on, nothing recorded changes
            pass

    injector = fault_kinds.Injector(links, issuer, observer, settle)
    cuts = {(f["terminal"], f["at_s"]) for f in sc["faults"] if f["kind"] == "power_cut"}
    declined = 0
    watch = None
    if observer is not None:
        watch = timelines.RunWatch(observer, store, ACCEPTED_TAP, sc["runs"][0], sc["runs"][0] + sc["simulated_s"],
                                   len(taps))
    try:
        for i, spec in enumerate(sc["terminals"]):
            t = sim_links.SimTerminal(spec, str(UID_BASE + i), workdir, links, clock=clock.path,
                                      heap=passengers.board_heap(sc), trace=trace)
            terminals.append(t)
        for t in terminals:
            t.board.wait_console(b"ready:", timeout=30)
            kit.provision(t, db, uplink=t.uplink_file(workdir))
        for t in terminals:
            kit.ready(t)
        if watch:
            watch.ready(terminals)
        for when, ti, kind, payload, stop_index in taps:
            if watch:
                watch.poll(clock.now, time.time())
                watch.clock(when)
            if links.hub is not None:
                settle(cellular_only=True)
            clock.set(when)
            progress.simulated = when
            t = terminals[ti]
            for phase, fault in planned.due(when):
                injector.apply(phase, fault)
            injector.tap(t.name)
            due = {c for c in cuts if c[0] == t.name and c[1] <= when}
            cuts -= due
            kit.at_stop(t, stop_index)
            ev = kit.present(t, kind, payload, when, progress)
            progress.presented += 1
            if ev["text"].startswith(passengers.REJECTED):
                declined += 1
            else:
                t.accepted.add(demo.seq_of(ev))
            if watch:
                watch.tapped(when, t, kind, ev, time.time())
            kit.card_gone(t)
            if due:
                if watch:
                    watch.power(when, t, False)
                hello = kit.hello(t)
                _power_cut(t)
                if injector.reachable(t.name):  # its new session, before the next tap: a payment code needs it
                    kit.settle(t, hello, timeout=RENEW_S)
                progress.power_cuts += 1
                if watch:
                    watch.power(when, t, True)
        if watch:
            watch.poll(clock.now, time.time())
            watch.clock(sc["runs"][0] + sc["simulated_s"])
        clock.set(sc["runs"][0] + sc["simulated_s"])
        progress.simulated = clock.now
        for phase, fault in planned.rest():  # coverage back, the collector up: the backlogs upload
            injector.apply(phase, fault)

        accepted = {(t.terminal, seq) for t in terminals for seq in t.accepted}
        journalled = {(t.terminal, seq) for t in terminals for seq in t.declines}  # declined taps' records
        demo._wait("every accepted tap and declined record at the collector",
                   lambda: accepted <= stored() and journalled <= stored_declines(), timeout=DRAIN_S)
        demo._wait("every transaction decided", lambda: not store.pending_records(), timeout=DRAIN_S)
        if watch:
            watch.poll(clock.now, time.time())
        rows = store.query("SELECT terminal, seq, token, atc, amount, kind, time FROM records r WHERE " + ACCEPTED_TAP)
        revenue = store.query("SELECT COALESCE(SUM(r.amount), 0) FROM records r JOIN authorisations a "
                              "ON a.terminal = r.terminal AND a.seq = r.seq WHERE a.approved = 1 AND "
                              + ACCEPTED_TAP)[0][0]
        summary = {
            "taps": len(taps),
            "accepted": len(accepted),
            "declined": declined,
            "uploaded": len(rows),
            "lost": len(accepted - {(r[0], r[1]) for r in rows}) + len(journalled - stored_declines()),
            "duplicates": len(rows) - len({passengers.tap_key(r[2], r[3], r[5], r[6]) for r in rows}),
            "revenue_fen": revenue,
            "subsidy_fen": passengers.subsidy_fen(store),
            "terminals": len(terminals),
            "simulated_s": sc["simulated_s"],
            "wall_s": round(time.monotonic() - start_wall, 1),
            "digest": digest(store),
            "power_cuts": progress.power_cuts,
            "issuer_declined": store.query("SELECT COUNT(*) FROM authorisations WHERE approved = 0")[0][0],
            "declines": declines(store),
            "by_credential": kit.by_credential,
            "promotion_fen": passengers.promotion_fen(store),
            "faults": dict(sorted(dict(injector.counts, **({"power_cut": progress.power_cuts}
                                                          if progress.power_cuts else {})).items())),
            "offline_taps": injector.offline_taps,
            "pending_at_acquirer_return": injector.pending_at_return,
        }
    finally:
        stop.set()
        worker.join(timeout=5)
        kit.close()
        for t in terminals:
            t.close()
        for t in terminals:
            t.uplink.join(timeout=2)
        links.close()
        store.close()
        if trace is not None:
            trace.close()
    return summary


def _hhmm(sc, seconds):
    local = seconds - sc["midnight"]
    return "%02d:%02d" % (local // 3600, local // 60 % 60)


def _folder_problem(option, folder, verb, what):
    """Why `folder` cannot take the run's `option` files (one line), or None once it is an empty directory."""
    try:
        os.makedirs(folder, exist_ok=True)
        busy = os.listdir(folder)
    except OSError as e:
        return "cannot %s into %s: %s" % (verb, folder, e.strerror or e)
    if busy:
        return "%s %s is not empty (%s)" % (option, folder, what)
    return None


def main(args):
    try:
        sc = scenarios.load(args.scenario)
    except scenarios.ScenarioError as e:
        print("sim run: %s" % e, file=sys.stderr)
        return 2
    seed = sc["seed"] if args.seed is None else args.seed
    for option, folder, verb, what in (
            ("--record", args.record, "record", "one capture file per terminal link goes there"),
            ("--trace", args.trace, "trace", "each terminal's console and modem UART trace go there")):
        problem = folder and _folder_problem(option, folder, verb, what)
        if problem:
            print("sim run: %s" % problem, file=sys.stderr)
            return 2
    seen = []
    try:
        observer, view = timelines.cli_observer("sim run", args, sc["name"], timelines.groups_of(sc), sc["midnight"])
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        if args.workdir:
            os.makedirs(args.workdir, exist_ok=True)
            if os.listdir(args.workdir):
                print("sim run: --workdir %s is not empty (a run starts from fresh flash images and collector)"
                      % args.workdir, file=sys.stderr)
                return 2
            with view:
                summary = simulate(sc, seed, args.workdir, progress_cb=seen.append, observer=observer,
                                   record_dir=args.record, trace_dir=args.trace)
        else:
            with tempfile.TemporaryDirectory(prefix="zhifu-sim-") as workdir, view:
                summary = simulate(sc, seed, workdir, progress_cb=seen.append, observer=observer,
                                   record_dir=args.record, trace_dir=args.trace)
    except KeyboardInterrupt:
        p = seen[0] if seen else None
        if p is None:
            print("sim run: interrupted before the first tap; every board stopped", file=sys.stderr)
        else:
            print("sim run: interrupted at %s simulated after %d of %d taps; every board stopped"
                  % (_hhmm(sc, p.simulated), p.presented, p.total), file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as e:
        print("sim run: %s" % e, file=sys.stderr)
        return 1
    if args.report:
        timelines.write_report(args.report, observer, summary)
    if not args.json:
        print("%s (seed %d): %d taps on %d terminals, %d accepted, %d declined; %d uploaded, %d lost, "
              "%d duplicates; %.1f simulated hours in %.1f s"
              % (sc["name"], seed, summary["taps"], summary["terminals"], summary["accepted"], summary["declined"],
                 summary["uploaded"], summary["lost"], summary["duplicates"], summary["simulated_s"] / 3600,
                 summary["wall_s"]))
    print(json.dumps(summary), flush=True)
    return 0 if summary["lost"] == 0 and summary["duplicates"] == 0 else 1


def add_arguments(parser):
    parser.add_argument("scenario", help="the scenario file (TOML; host_sim/sim/scenario.py describes it)")
    parser.add_argument("--seed", type=int, help="passengers' seed (default: the scenario's)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    timelines.add_arguments(parser)
    parser.add_argument("--record", metavar="DIR", help="write every link's bytes, both ways, on the simulated "
                                                         "clock: one capture file per terminal link "
                                                         "(protocol/CAPTURE.md; `sim replay` plays them)")
    parser.add_argument("--trace", metavar="DIR", help="write each board's whole console and each cellular terminal's "
                                                        "modem UART, both ways, as text stamped with the simulated "
                                                        "time and the wall seconds (host_sim/sim/trace.py)")
    parser.add_argument("--workdir", help="keep the flash images and the collector database here (an empty or "
                                          "new directory)")
