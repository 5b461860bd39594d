"""`python -m host_sim bench collector --json`: how many records per second the collector ingests on one core.

Terminals made of the same protocol.peer.Peer the firmware runs (device key registered in the
collector, AUTH, AES-CTR + MAC on every frame, selective repeat) upload realistic EMV-QR records
(58 bytes, as a QR tap journals them).  Their wire bytes go, one read of up to --chunk bytes per link
per round as a server's socket reads would, into the collector's real Session objects and from
there into a real SQLite file in WAL mode with synchronous=FULL.  With group commit (the default)
each round's frames of all links share one transaction and one fsync (host_sim/backend/ingest.py); the
replies, and so the ACKs, reach the terminals only after that commit.  --per-frame commits every
frame on its own, the way Session.receive() does without a group.

--served measures the real server instead: `python -m host_sim collector --listen` runs as its own
process, pinned to one core, and the terminals upload over TCP on loopback from this process (on
another core when there is one).  records_per_s is then records / wall-clock seconds from the first
RECORDS frame to the last acknowledgement; collector_cpu_seconds is the server's CPU time in that span.
The server group-commits whatever frames its event loop has read in one pass (host_sim/backend/ingest.py).
--processes N runs N collector processes on one database (each on its own port, the terminals dealt
out in turn; none pinned), so with PostgreSQL it shows how ingest scales with N: records_per_cpu_s is
then records / the CPU seconds of all N collectors (the database server's own CPU not counted).
--db postgresql://... names a server: the bench makes a database of its own there and drops it after.

In the default (in-process) mode only the collector's work is timed (Session.receive and the
commits); the simulated terminals run in the same process between rounds and are not counted.
After every round, outside the timing, a second database connection checks that every record a
terminal has seen acknowledged is committed.

    records_per_s     records stored / seconds of collector work
    frames_per_s      RECORDS frames ingested per second
    records_per_frame average records per frame
    commit_every      average frames per commit
    cpu_seconds       CPU time of the collector's work (process time)
"""

import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time

from host_sim.backend import host_session, ingest, sqldb
from host_sim.backend.store import Store
from host_sim.bench.link import emv_qr_record
from host_sim.tools import build
from protocol import frame, link, peer, record

KEY_BASE = bytes(range(32))


def records_batch(records, start, room):
    """The records from `start` that fit one RECORDS body of `room` bytes (terminal ids elided), as
    firmware/uplink.py fills a frame; at least one."""
    batch = []
    size = 2
    for rec in records[start:]:
        size += 1 + len(rec) - link.TID_SIZE
        if size > room and batch:
            break
        batch.append(rec)
    return batch


class Terminal:
    """A simulated terminal: a Peer uploading `count` records, with a constant clock (no retransmit
    timer runs out, so every frame is sent once unless the collector fails to acknowledge it)."""

    def __init__(self, index, count, window, max_frame):
        self.ident = b"ZB" + index.to_bytes(6, "big")
        self.key = bytes((b + index) & 0xFF for b in KEY_BASE)
        self.records = [emv_qr_record(seq, self.ident) for seq in range(1, count + 1)]
        self.peer = peer.Peer(peer.ROLE_TERMINAL, self.ident, self.key, "bench", window=window,
                              max_frame=max_frame, rx_window=4)
        self.reader = frame.FrameReader()
        self.outbox = bytearray()
        self.queued = 0
        self.frames = 0
        self.acked = 0  # newest record sequence checked as committed
        self.peer.start(0)

    def fill(self):
        """Queue RECORDS frames while the window allows, as firmware/uplink.py does."""
        p = self.peer
        room = p.max_body()
        while p.up() and p.can_send() and self.queued < len(self.records):
            batch = records_batch(self.records, self.queued, room)
            p.send(link.RECORDS, link.records(batch, self.ident), record.seq_of(batch[-1]))
            self.queued += len(batch)
            self.frames += 1
        while True:
            payload = p.poll(0)
            if payload is None:
                break
            self.outbox += link.wire(payload)

    def take(self, chunk):
        data = bytes(self.outbox[:chunk])
        del self.outbox[:chunk]
        return data

    def feed(self, data):
        for payload in self.reader.feed(data):
            self.peer.feed(payload, 0)

    def done(self):
        return self.peer.sender.delivered_tag >= len(self.records)


def _rates(records, stored, frames, seconds):
    """The keys both modes report first: records and frames per second of ingest, records per frame."""
    return {"records_per_s": round(stored / seconds) if seconds else 0,
            "frames_per_s": round(frames / seconds) if seconds else 0,
            "records_per_frame": round(records / frames, 2) if frames else 0}


def _unacked_commits(check, term):
    """Records the terminal saw acknowledged that a second connection cannot see committed."""
    tag = term.peer.sender.delivered_tag
    if tag <= term.acked:
        return 0
    (n,) = check.execute("SELECT count(*) FROM records WHERE terminal = ? AND seq > ? AND seq <= ?",
                         (term.ident.hex(), term.acked, tag)).fetchone()
    missing = (tag - term.acked) - n
    term.acked = tag
    return missing


def run_ingest(db, records=100000, terminals=4, window=128, max_frame=512, chunk=16384, group=True, max_rounds=None):
    """Upload `records` records split over `terminals` links into the database file `db`."""
    store = Store(db)
    check = sqldb.connect(db)
    share = records // terminals
    terms = [Terminal(i, share + (1 if i < records % terminals else 0), window, max_frame) for i in range(terminals)]
    for term in terms:
        store.register(term.ident.hex(), term.key)
    sessions = [host_session.Session(store) for _ in terms]
    unacked_commits = 0
    rounds = 0
    seconds = cpu = 0.0
    try:
        while not all(t.peer.up() for t in terms):  # handshakes, not timed
            for term, session in zip(terms, sessions):
                term.fill()
                term.feed(session.receive(term.take(len(term.outbox))))
        commits0 = store.commits
        while not all(t.done() for t in terms):
            rounds += 1
            if max_rounds is not None and rounds > max_rounds:
                raise RuntimeError("no progress after %d rounds" % max_rounds)
            inputs = []
            for term, session in zip(terms, sessions):
                term.fill()
                inputs.append((session, term.take(chunk)))
            t0, c0 = time.perf_counter(), time.process_time()
            if group:
                replies = ingest.receive_group(store, inputs)
                if replies is None:
                    raise RuntimeError("group commit failed")
            else:
                replies = [session.receive(data) for session, data in inputs]
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
            for term, reply in zip(terms, replies):
                term.feed(reply)
                unacked_commits += _unacked_commits(check, term)
        commits = store.commits - commits0
        (stored,) = check.execute("SELECT count(*) FROM records").fetchone()
        (distinct,) = check.execute("SELECT count(*) FROM (SELECT DISTINCT terminal, seq FROM records) AS d").fetchone()
    finally:
        check.close()
        store.close()
    frames = sum(t.frames for t in terms)
    return {
        **_rates(records, stored, frames, seconds),
        "commit_every": round(frames / commits, 1) if commits else 0,
        "cpu_seconds": round(cpu, 3),
        "seconds": round(seconds, 3),
        "records": records,
        "stored": stored,
        "distinct": distinct,
        "duplicate_receipts": sum(s.duplicate_receipts for s in sessions),
        "acknowledged": sum(t.peer.sender.delivered_tag for t in terms),
        "acked_not_committed": unacked_commits,
        "frames": frames,
        "commits": commits,
        "rounds": rounds,
        "terminals": terminals,
        "window": window,
        "max_frame": max_frame,
        "group_commit": group,
        **_durability(db),
    }


def _durability(db):
    """How the database makes a commit durable (reported beside the figures)."""
    if sqldb.is_url(db):
        return {"database": "postgresql", "synchronous_commit": "on"}
    return {"synchronous": "FULL", "journal_mode": "wal"}


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_served(db, records=100000, terminals=4, window=128, max_frame=512, timeout=600, processes=1):
    """Upload over TCP into `processes` `collector --listen` processes; see the module docstring."""
    share = records // terminals
    terms = [Terminal(i, share + (1 if i < records % terminals else 0), window, max_frame) for i in range(terminals)]
    store = Store(db)
    for term in terms:
        store.register(term.ident.hex(), term.key)
    store.close()
    ports = [_free_port() for _ in range(processes)]
    logs = [tempfile.TemporaryFile() for _ in ports]
    procs = [subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                               "127.0.0.1:%d" % port], cwd=build.ROOT, stdout=log, stderr=log)
             for port, log in zip(ports, logs)]
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1 and processes == 1:  # one core for the collector, the others for the terminals
        os.sched_setaffinity(procs[0].pid, cpus[:1])
        os.sched_setaffinity(0, cpus[1:])
    sel = selectors.DefaultSelector()

    def exited():
        return [p.poll() for p in procs if p.poll() is not None]

    try:
        deadline = time.monotonic() + 20
        socks = []
        for i, term in enumerate(terms):
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", ports[i % processes]), timeout=5)
                    break
                except OSError as e:
                    if exited() or time.monotonic() > deadline:
                        raise RuntimeError("the collector did not listen") from e
                    time.sleep(0.05)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, term)
            socks.append(sock)

        def pump(until):
            limit = time.monotonic() + timeout
            while not until():
                if time.monotonic() > limit or exited():
                    raise RuntimeError("no progress (collector exit codes %s)" % exited())
                for sock, term in zip(socks, terms):
                    term.fill()
                    while term.outbox:
                        try:
                            sent = sock.send(term.outbox)
                        except BlockingIOError:
                            break
                        del term.outbox[:sent]
                for key, _ in sel.select(0.05):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        raise RuntimeError("the collector closed a link")
                    key.data.feed(data)

        pump(lambda: all(t.peer.up() for t in terms))  # handshakes, not timed
        t0, cpu0 = time.perf_counter(), sum(_cpu_seconds(p.pid) for p in procs)
        pump(lambda: all(t.done() for t in terms))
        seconds, cpu = time.perf_counter() - t0, sum(_cpu_seconds(p.pid) for p in procs) - cpu0
        for sock in socks:
            sock.close()
        for p in procs:
            p.send_signal(2)  # SIGINT: the collector logs its group-commit counters and exits
        for p in procs:
            p.wait(timeout=600)  # after its last authorisation pass
    finally:
        sel.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        os.sched_setaffinity(0, cpus)
    reads = groups = 0
    for log in logs:
        log.seek(0)
        counters = re.search(rb"ingest: (\d+) frames in (\d+) group commits", log.read())
        log.close()
        if counters:
            reads += int(counters.group(1))
            groups += int(counters.group(2))
    check = sqldb.connect(db)
    try:
        (stored,) = check.execute("SELECT count(*) FROM records").fetchone()
        (distinct,) = check.execute("SELECT count(*) FROM (SELECT DISTINCT terminal, seq FROM records) AS d").fetchone()
        (authorised,) = check.execute("SELECT count(*) FROM authorisations").fetchone()
    finally:
        check.close()
    frames = sum(t.frames for t in terms)
    return {
        **_rates(records, stored, frames, seconds),
        "reads_per_commit": round(reads / groups, 1) if groups else 0,
        "collector_cpu_seconds": round(cpu, 3),
        "records_per_cpu_s": round(stored / cpu) if cpu else 0,
        "seconds": round(seconds, 3),
        "records": records,
        "stored": stored,
        "distinct": distinct,
        "authorised": authorised,
        "acknowledged": sum(t.peer.sender.delivered_tag for t in terms),
        "frames": frames,
        "group_commits": groups,
        "terminals": terminals,
        "window": window,
        "max_frame": max_frame,
        "served": "tcp",
        "processes": processes,
        "collector_cpus": 1 if processes == 1 and len(cpus) > 1 else len(cpus),
        "group_commit": True,
        **_durability(db),
    }


def run(args):
    if args.db and sqldb.is_url(args.db):
        return _on_own_database(args.db, lambda db: _run(args, db))
    with tempfile.TemporaryDirectory(prefix="zhifu-bench-collector-") as tmp:
        return _run(args, args.db or os.path.join(tmp, "collector.db"))


def _run(args, db):
    if args.served:
        return run_served(db, args.records, args.terminals, args.window, args.max_frame, processes=args.processes)
    return run_ingest(db, args.records, args.terminals, args.window, args.max_frame, args.chunk,
                      group=not args.per_frame)


def _on_own_database(server_url, body):
    """body(url) on a new database of the server of `server_url`, dropped afterwards."""
    import psycopg

    from host_sim.backend import db as db_command

    name = "zf_bench_%d" % os.getpid()
    url = db_command.create(server_url, name)
    try:
        return body(url)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def add_arguments(parser):
    parser.add_argument("--records", type=int, default=100000, help="records to ingest in all")
    parser.add_argument("--terminals", type=int, default=4, help="terminals uploading at once, one link each")
    parser.add_argument("--window", type=int, default=128, help="the terminals' send window (frames)")
    parser.add_argument("--max-frame", type=int, default=512, help="the terminals' max_frame (wire bytes)")
    parser.add_argument("--chunk", type=int, default=16384, help="bytes the collector reads per link per round")
    parser.add_argument("--served", action="store_true",
                        help="measure the real `collector --listen` process over TCP on loopback")
    parser.add_argument("--processes", type=int, default=1,
                        help="--served: collector processes sharing the database (PostgreSQL), each on its own port")
    parser.add_argument("--per-frame", action="store_true", help="commit every frame on its own (no group commit)")
    parser.add_argument("--db", help="database file (default: a temporary one; must not exist yet), or a PostgreSQL "
                                     "server's URL (the bench makes and drops a database of its own there)")
