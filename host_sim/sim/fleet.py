"""`python -m host_sim sim fleet --terminals N [--boards K] [--taps-per-terminal T] [--json] [--live] [--report DIR]
...`: a county fleet.

N terminals made of the real protocol/ code (protocol.peer.Peer: HELLO/AUTH with its device key, AES-CTR
+ MAC on every frame, selective repeat; RECORDS frames filled as firmware/uplink.py fills them) run in this
one CPython process against one real `collector --listen` process over TCP on loopback.  Each terminal
connects from its own 127.x.y.z source address, so the collector's per-address handshake limit sees them
apart, as it would real hosts.

One simulated clock drives them all.  The seed draws every terminal's tap times over --simulated-s; the
clock moves in ticks of --tick-ms and skips ticks in which nothing falls due.  In a tick the terminals
whose taps fall due journal one record each (its time is the simulated time), queue RECORDS frames while
their window allows, and the sockets are pumped until every record journaled so far is acknowledged (the
collector acknowledges only after its commit) or --tick-wall-s passes; then the clock moves on.  The
peers read the simulated clock, so no retransmit timer runs out while the collector works.

With --boards K, K full virtual boards (the firmware on MicroPython, host_sim/sim/fleet_boards.py) join
the fleet on the same clock: the clock file their time reads follows the ticks (simulated UNIX time,
EPOCH + the simulated second), each board's taps (drawn from the seed, T each) are CPM codes presented
on its scanner at their simulated second, and the collector serves their uplink ptys (`--serial`) next to
the terminals' TCP.  A tick also waits until the boards' answered taps are stored.  Their records count in
every figure below; "boards" holds their own.

    records_per_s   records stored / wall seconds of the simulated span (first tap to last ACK)
    latency_ms      tap-to-stored: wall ms from a record being journaled to its ACK, p50/p90/p99/max
    queue_depth     per terminal, the most records it held journaled and not yet acknowledged:
                    max / p50 / p99 over the terminals (and boards)
    queue_depth_top the 10 deepest terminals: [{"name": terminal id, "depth"}], deepest first
    lost            taps whose record the collector's database does not hold at the end
    duplicates      stored rows beyond one per (terminal, seq), or whose bytes differ from the record the
                    terminal journaled under that seq
    digest          SHA-256 of the stored records in (terminal, seq) order: equal seeds, equal digests;
                    with boards, SHA-256 of that digest and the boards' (fleet_boards.py: their records'
                    fields without token and bytes, which fresh keys make anew each run)
    boards          with --boards: {"boards", "taps", "accepted", "stored", "lost", "duplicates",
                    "other_records", "latency_ms"}; latency from the display's answer to the record seen
                    in the collector's database
    collector_cpu_seconds, terminals_cpu_seconds   CPU of the collector, of this process, in that span
    collector_rss_mb  the collector's resident memory at the end
    fd_limit        file descriptors this process may open (raised to the hard limit when needed): one per
                    terminal here and one per terminal in the collector, the first limit a large fleet meets

The largest fleet this machine carries (2 cores shared with other work, 24 GB, `ulimit -Hn` 20 000), with
`--boards 4`, measured; ten taps a terminal over an hour unless said:

    terminals  taps     wall_s  records/s  latency ms p50/p99  collector CPU/span  collector RSS
    1 000      10 040   79      142        12 / 37             47 s / 79 s         58 MB
    5 000      50 040   273     194        55 / 191            223 s / 262 s       135 MB
    10 000     100 040  609     171        130 / 524           555 s / 591 s       230 MB
    19 000     38 008   71      992        90 / 362            36 s / 43 s         402 MB  (2 taps in 300 s)

Every run stored every tap once (lost 0, duplicates 0, late_ticks 0); two runs of 1 000 terminals and 4
boards gave the same digest.  The boards' own latency (display to database) at 1 000 terminals was p50
21 ms, p90 2.4 s, p99 4.7 s: a board's link timers run on the simulated clock (ticks_ms follows it), and
where a tick jumps the clock while one of its frames waits for an answer, the board gives the session up,
the collector logs "refused: bad proof" for the handshake it abandons, and the board uploads after
reconnecting (run.py's docstring describes the same); a link quiet at the jump holds.
Where the limits are:
- File descriptors come first: one per terminal in this process and one per link in the collector, so
  19 900 terminals under the hard limit of 20 000 (19 000 ran; handshakes took 28 s).  More needs a higher
  hard limit or several collectors (`collector --reuse-port` on a shared PostgreSQL database).
- CPU: the collector is one process on one core.  Idle links cost little (10 000 connected: 13 % of a core).
  Its commit rate is the limit on speed: records arriving together share a group commit (1 000 terminals,
  ten taps each in 10 simulated seconds: 2 852 records/s, 0.35 ms of collector CPU a record), records
  trickling in one tick at a time take a commit each (about 5 ms of CPU with its WAL writes), so at
  10 000 terminals the collector is busy 94 % of the span and the hour runs only 6 times faster than real
  time.  This process's CPU is small beside it (47 s at 10 000).
- Memory is not a limit: about 21 KB a link in the collector (402 MB at 19 000), 141 MB here at 10 000.
"""

import argparse
import hashlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

from host_sim.backend import sqldb
from host_sim.backend.store import Store
from host_sim.bench.collector import _cpu_seconds, records_batch
from host_sim.bench.collector_load import _rss_mb
from host_sim.bench.link import AID_UNIONPAY
from host_sim.sim import fleet_boards
from host_sim.sim import timeline as timelines
from host_sim.tools import build
from protocol import fleet as fleet_kinds
from protocol import frame, link, peer, record

EPOCH = 1_800_000_000  # the simulated clock's zero, as a record's UNIX time
KEY_BASE = bytes(range(32))
FARE_FEN = 200  # every fleet tap: an accepted QR fare


class FleetError(Exception):
    """The fleet could not run (the machine's or the collector's limit): one line for the user."""


def ident_of(index):
    return b"ZF" + index.to_bytes(6, "big")


def key_of(index):
    return bytes((b * 3 + index) & 0xFF for b in KEY_BASE)


def source_address(index):
    """Terminal `index`'s own loopback address: 127.a.b.c with c in 1..250."""
    return "127.%d.%d.%d" % (1 + index // 62500, (index // 250) % 250, index % 250 + 1)


class Terminal:
    """One protocol-level terminal: a journal of records and a Peer that uploads them."""

    def __init__(self, index, window=8, max_frame=288):
        self.index = index
        self.ident = ident_of(index)
        self.key = key_of(index)
        self.peer = peer.Peer(peer.ROLE_TERMINAL, self.ident, self.key, "sim fleet", window=window,
                              max_frame=max_frame, rx_window=4)
        self.reader = frame.FrameReader()
        self.outbox = bytearray()
        self.journal = []  # raw records, journal[seq - 1]
        self.journaled_at = []  # wall time each record was journaled
        self.queued = 0  # records handed to the Peer
        self.acked = 0  # newest acknowledged seq
        self.max_depth = 0
        self.latencies = []
        self.sock = None
        self.now = 0  # simulated ms
        self.name = "T%04d" % (index + 1)
        self.observer = None  # host_sim/sim/timeline.py's contract, told of every ACK

    def tap(self, when_s, rng):
        """Journal one accepted QR tap at simulated second `when_s`."""
        seq = len(self.journal) + 1
        token = rng.randbytes(16)
        self.journal.append(record.encode(self.ident, seq, EPOCH + when_s, record.KIND_QR_CPM, FARE_FEN, 156,
                                          record.ACCEPTED, record.REASON_NONE, 1, token,
                                          [(record.EXT_ATC, (seq & 0xFFFF).to_bytes(2, "big")),
                                           (record.EXT_AID, AID_UNIONPAY)]))
        self.journaled_at.append(time.perf_counter())
        self.max_depth = max(self.max_depth, seq - self.acked)

    def fill(self):
        """Queue RECORDS frames while the window allows, then every frame the Peer has due."""
        p = self.peer
        room = p.max_body()
        while p.up() and p.can_send() and self.queued < len(self.journal):
            batch = records_batch(self.journal, self.queued, room)
            p.send(link.RECORDS, link.records(batch, self.ident), record.seq_of(batch[-1]))
            self.queued += len(batch)
        while True:
            payload = p.poll(self.now)
            if payload is None:
                break
            self.outbox += link.wire(payload)

    def flush(self):
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except BlockingIOError:
                return
            del self.outbox[:sent]

    def feed(self, data):
        for payload in self.reader.feed(data):
            self.peer.feed(payload, self.now)
        tag = self.peer.sender.delivered_tag
        if tag > self.acked:
            now = time.perf_counter()
            self.latencies.extend(now - self.journaled_at[s] for s in range(self.acked, tag))
            if self.observer is not None:
                for s in range(self.acked, tag):
                    self.observer.stored(self.now / 1000, self.name, s + 1, now - self.journaled_at[s])
                self.observer.queue(self.now / 1000, self.name, len(self.journal) - tag)
            self.acked = tag

    def busy(self):
        return self.acked < len(self.journal) or bool(self.outbox) or not self.peer.up()


def _percentiles(values, keys=(50, 90, 99)):
    if not values:
        return {**{"p%d" % k: None for k in keys}, "max": None}
    values = sorted(values)
    out = {"p%d" % k: values[min(len(values) - 1, len(values) * k // 100)] for k in keys}
    out["max"] = values[-1]
    return out


def _raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        soft = min(hard, need) if hard != resource.RLIM_INFINITY else need
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


class Fleet:
    """The terminals, their sockets and the pump that moves bytes both ways."""

    def __init__(self, terms, port, collector):
        self.terms = terms
        self.port = port
        self.collector = collector
        self.sel = selectors.DefaultSelector()

    def connect(self):
        for term in self.terms:
            sock = socket.socket()
            try:
                sock.bind((source_address(term.index), 0))
                sock.connect(("127.0.0.1", self.port))
            except OSError as e:
                sock.close()
                raise FleetError("terminal %d of %d could not connect: %s" % (term.index + 1, len(self.terms), e)) \
                    from None
            sock.setblocking(False)
            term.sock = sock
            self.sel.register(sock, selectors.EVENT_READ, term)
            term.peer.start(0)

    def pump(self, busy, wall_limit):
        """Move bytes until no terminal in `busy` is busy or `wall_limit` (perf_counter) passes."""
        busy = [t for t in busy if t.busy()]
        while busy:
            if time.perf_counter() > wall_limit:
                return busy
            if self.collector.poll() is not None:
                raise FleetError("the collector exited (status %s)" % self.collector.returncode)
            for term in busy:
                term.fill()
                term.flush()
            for key, _ in self.sel.select(0.05):
                term = key.data
                try:
                    data = term.sock.recv(65536)
                except OSError as e:
                    raise FleetError("terminal %d's link failed: %s" % (term.index + 1, e)) from None
                if not data:
                    raise FleetError("the collector closed terminal %d's link" % (term.index + 1))
                term.feed(data)
                term.fill()
                term.flush()
            busy = [t for t in busy if t.busy()]
        return busy

    def close(self):
        for term in self.terms:
            if term.sock is not None:
                term.sock.close()
        self.sel.close()


def _start_collector(db, port, terminals, log, extra=()):
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                             "127.0.0.1:%d" % port, "--max-connections", str(terminals + 16),
                             "--idle-timeout", "86400", "--handshake-timeout", "3600", *extra],
                            cwd=build.ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise FleetError("the collector did not listen on 127.0.0.1:%d" % port) from None
            time.sleep(0.05)




def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _schedule(terminals, taps, simulated_s, rng):
    """Every tap as (simulated second, terminal index), in time order."""
    events = [(rng.randrange(simulated_s), i) for i in range(terminals) for _ in range(taps)]
    events.sort()
    return events


def _check(db, terms, skip=()):
    """(stored, lost, duplicates, digest) from the collector's database; rows of terminals in `skip` (the
    boards) are left to their own check."""
    journals = {t.ident.hex(): t.journal for t in terms}
    con = sqldb.connect(db)
    try:
        rows = con.execute("SELECT terminal, seq, raw FROM records ORDER BY terminal, seq").fetchall()
    finally:
        con.close()
    rows = [r for r in rows if r[0] not in skip]
    digest = hashlib.sha256()
    seen = set()
    duplicates = 0
    for terminal, seq, raw in rows:
        raw = bytes(raw)
        digest.update(bytes.fromhex(terminal) + seq.to_bytes(4, "big") + raw)
        journal = journals.get(terminal, ())
        if (terminal, seq) in seen or not 1 <= seq <= len(journal) or journal[seq - 1] != raw:
            duplicates += 1
        seen.add((terminal, seq))
    lost = sum(1 for t in journals for seq in range(1, len(journals[t]) + 1) if (t, seq) not in seen)
    return len(rows), lost, duplicates, digest.hexdigest()


def run_fleet(db, terminals, taps=10, seed=1, simulated_s=3600, tick_ms=1000, tick_wall_s=30.0, drain_wall_s=120.0,
              boards=0, observer=None):
    """Run the fleet (and `boards` full virtual boards, host_sim/sim/fleet_boards.py); returns the JSON result
    (see the module docstring).  `observer` (host_sim/sim/timeline.py's contract) is told of every tap, queue
    depth and ACK."""
    fd_limit = _raise_fd_limit(terminals + 256)
    if fd_limit < terminals + 64:
        raise FleetError("%d terminals need %d file descriptors; this process may open %d (ulimit -n)"
                         % (terminals, terminals + 64, fd_limit))
    rng = random.Random(seed)
    terms = [Terminal(i) for i in range(terminals)]
    store = Store(db)
    version = store.token_key()[0]
    for term in terms:
        store.register(term.ident.hex(), term.key)
        store.set_delivered(term.ident.hex(), fleet_kinds.KIND_TOKEN_KEY, version)
    store.close()
    port = _free_port()
    log = tempfile.TemporaryFile()
    wall0 = time.perf_counter()
    bd = board_dir = None
    try:
        if boards:
            board_dir = tempfile.TemporaryDirectory(prefix="zhifu-fleet-boards-")
            bd = fleet_boards.Boards(boards, board_dir.name, seed, taps, simulated_s, EPOCH, observer)
            bd.provision(db)
        proc = _start_collector(db, port, terminals, log, bd.uplinks() if bd else ())
    except BaseException:
        _close_boards(bd, board_dir)
        log.close()
        raise
    fl = Fleet(terms, port, proc)
    try:
        if bd:
            bd.start_watching()
        fl.connect()
        left = fl.pump(terms, time.perf_counter() + max(60.0, terminals * 0.05))
        if left:
            raise FleetError("%d of %d terminals did not complete the handshake" % (len(left), terminals))
        handshake_s = time.perf_counter() - wall0
        events = _schedule(terminals, taps, simulated_s, rng)
        if observer is not None:
            observer.clock(0, 0, simulated_s)
            if hasattr(observer, "expect"):
                observer.expect(len(events) + (len(bd.events) if bd else 0))
            for term in terms:
                term.observer = observer
                observer.link(term.name, "up")
        cpu0, own0, t0 = _cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
        late = 0  # ticks whose records were not all acknowledged within --tick-wall-s
        i = 0
        tick_s = tick_ms / 1000
        while i < len(events) or (bd and bd.next_at() is not None):
            due = [events[i][0]] if i < len(events) else []
            if bd and bd.next_at() is not None:
                due.append(bd.next_at())
            tick = int(min(due) // tick_s)  # the next tick with a tap: the clock skips empty ones
            end = (tick + 1) * tick_s
            now_ms = int(end * 1000)
            if bd:
                bd.tap_until(end)  # each at its own simulated second, then the clock at the tick's end
                bd.set_clock(end)
            touched = []
            while i < len(events) and events[i][0] < end:
                when, index = events[i]
                term = terms[index]
                term.now = now_ms
                term.tap(when, rng)
                touched.append(term)
                if observer is not None:
                    observer.tap(when, term.name, "cpm", "PAID %d.%02d" % divmod(FARE_FEN, 100), "", FARE_FEN, 0)
                    observer.queue(when, term.name, len(term.journal) - term.acked)
                i += 1
            if observer is not None:
                observer.clock(now_ms / 1000, 0, simulated_s)
            limit = time.perf_counter() + tick_wall_s
            if fl.pump(touched, limit) or (bd and not bd.settle(limit)):
                late += 1
        limit = time.perf_counter() + drain_wall_s
        left = fl.pump(terms, limit)
        if bd:
            bd.settle(limit)
        if observer is not None:
            observer.clock(simulated_s, 0, simulated_s)
        seconds = time.perf_counter() - t0
        collector_cpu = _cpu_seconds(proc.pid) - cpu0
        own_cpu = time.process_time() - own0
        collector_rss = _rss_mb(proc.pid)
    finally:
        fl.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        _close_boards(bd, board_dir)
    stored, lost, duplicates, digest = _check(db, terms, {b.terminal for b in bd.boards} if bd else ())
    total = sum(len(t.journal) for t in terms)
    depths = [(t.ident.hex(), t.max_depth) for t in terms]
    latencies = [round(s * 1000, 2) for t in terms for s in t.latencies]
    board_figures = None
    if bd:
        board_figures, board_digest, board_depths = bd.check(db)
        total += board_figures["taps"]
        stored += board_figures["stored"]
        lost += board_figures["lost"]
        duplicates += board_figures["duplicates"]
        latencies += board_figures["latency_ms"]
        board_figures["latency_ms"] = _percentiles(board_figures["latency_ms"])
        depths += board_depths
        digest = hashlib.sha256((digest + board_digest).encode()).hexdigest()
    result = {
        "terminals": terminals,
        "taps": total,
        "stored": stored,
        "lost": lost,
        "duplicates": duplicates,
        "unacknowledged": sum(len(t.journal) - t.acked for t in left),
        "records_per_s": round(stored / seconds) if seconds else 0,
        "latency_ms": _percentiles(latencies),
        "queue_depth": _percentiles([d for _, d in depths], (50, 99)),
        "queue_depth_top": [{"name": name, "depth": d} for name, d in sorted(depths, key=lambda x: (-x[1], x[0]))[:10]],
        "late_ticks": late,
        "collector_cpu_seconds": round(collector_cpu, 2),
        "terminals_cpu_seconds": round(own_cpu, 2),
        "collector_rss_mb": collector_rss,
        "fd_limit": fd_limit,
        "handshake_s": round(handshake_s, 2),
        "simulated_s": simulated_s,
        "wall_s": round(time.perf_counter() - wall0, 2),
        "seed": seed,
        "digest": digest,
    }
    if board_figures:
        result["boards"] = board_figures
    return result


def _close_boards(bd, board_dir):
    if bd is not None:
        bd.close()
    if board_dir is not None:
        board_dir.cleanup()


def positive(text):
    """argparse type: a whole number >= 1 (the parser prints one line naming the flag)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1, not %r" % text)
    return n


def _count(text):
    """argparse type: a whole number >= 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError("must be a whole number of at least 0, not %r" % text)
    return n


def add_arguments(parser):
    parser.add_argument("--terminals", type=positive, required=True, help="protocol-level terminals in the fleet")
    parser.add_argument("--taps-per-terminal", type=positive, default=10, help="taps each terminal journals")
    parser.add_argument("--seed", type=int, default=1, help="seed of the tap schedule and the cards' tokens")
    parser.add_argument("--simulated-s", type=positive, default=3600, help="simulated seconds the taps fall in")
    parser.add_argument("--tick-ms", type=positive, default=1000, help="the simulated clock's step")
    parser.add_argument("--tick-wall-s", type=float, default=30.0,
                        help="wall seconds a tick may wait for its acknowledgements before the clock moves on")
    parser.add_argument("--boards", type=_count, default=0,
                        help="full virtual boards (the firmware on MicroPython) in the fleet, on its simulated clock")
    parser.add_argument("--db", help="the collector's database file, kept after the run (must not exist yet; "
                                     "default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    timelines.add_arguments(parser)


def main(args):
    if args.db and os.path.exists(args.db):
        print("sim fleet: --db %s exists; the fleet needs a new database" % args.db, file=sys.stderr)
        return 2
    try:
        observer, view = timelines.cli_observer("sim fleet", args, "sim fleet: %d terminals, seed %d"
                                                % (args.terminals, args.seed), {}, 0, "fleet")
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="zhifu-sim-fleet-") as tmp, view:
            result = run_fleet(args.db or os.path.join(tmp, "collector.db"), args.terminals,
                               args.taps_per_terminal, args.seed, args.simulated_s, args.tick_ms, args.tick_wall_s,
                               boards=args.boards, observer=observer)
    except (FleetError, fleet_boards.BoardError) as e:
        print("sim fleet: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sim fleet: interrupted; the collector %s stopped" % ("and every board were" if args.boards else "was"),
              file=sys.stderr)
        return 130
    if args.report:
        timelines.write_report(args.report, observer, result)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1
