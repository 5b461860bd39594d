"""`python -m host_sim bench collector-load --json`: does the collector keep serving under misuse?

A real `collector --listen` process on loopback (every client class from its own 127.x source
address, so the per-address handshake limit sees them apart, as it would real hosts).  Measured:

    handshake_ms_alone     a legitimate terminal's handshake (connect to AUTH answer), median / p99
    cpu_percent_idle       the collector's CPU while `idle` connections sit without a byte
    handshake_ms_loaded    the handshake again while idle, `slowloris` (one byte a second, never a
                           whole frame) and `non_reading` clients (authenticated terminals that upload
                           and never read an answer) are connected
    cpu_percent_loaded     the collector's CPU during that
    acquirer               the `acquirer` command run meanwhile (a write transaction, even with nothing
                           pending: the non-reading terminals' records are declined taps): exit, seconds
    flood                  HELLOs of an unknown terminal sent as fast as loopback takes them, from one
                           address, reconnecting whenever closed: HELLOs sent, collector log bytes written

Bounded in count and time: every phase has a deadline.
"""

import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from host_sim.backend.store import Store
from host_sim.bench.collector import _cpu_seconds, _free_port
from host_sim.tools import build
from protocol import frame, link, peer, record

LEGIT = b"ZLOAD000"
NON_READER = b"ZLNR"  # + 4-byte index
LEGIT_ADDRESS = "127.0.0.2"


def _key(ident):
    return bytes((i * 7 + sum(ident)) & 0xFF for i in range(32))


def _connect(port, source, timeout=5.0):
    sock = socket.socket()
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _address(group, i):
    """Source address number `i` of a client class: 127.<group>.x.y, one per client."""
    return "127.%d.%d.%d" % (group, i // 250, i % 250 + 1)


def handshake(port, ident, source, timeout=10.0):
    """Authenticate as `ident`; (socket, peer, seconds from connect to the host's AUTH)."""
    t0 = time.perf_counter()
    sock = _connect(port, source, timeout)
    term = peer.Peer(peer.ROLE_TERMINAL, ident, _key(ident), "bench", window=128, max_frame=512, rx_window=4)
    reader = frame.FrameReader()
    term.start(0)
    while not term.up():
        p = term.poll(0)
        if p is not None:
            sock.sendall(link.wire(p))
            continue
        data = sock.recv(4096)
        if not data:
            raise RuntimeError("the collector closed a legitimate handshake")
        for q in reader.feed(data):
            term.feed(q, 0)
    return sock, term, time.perf_counter() - t0


def _latencies(port, count, group, timeout=10.0):
    """Handshake times of `count` terminals, each from its own address (127.<group>.x.y)."""
    ms = []
    failed = 0
    deadline = time.monotonic() + 60  # the phase is bounded however slow the collector is
    for i in range(count):
        if time.monotonic() > deadline:
            failed += count - i
            break
        try:
            sock, _, seconds = handshake(port, LEGIT, _address(group, i + 1), timeout)
        except (OSError, RuntimeError):
            failed += 1
            continue
        sock.close()
        ms.append(seconds * 1000)
    ms.sort()
    if not ms:
        return {"median": None, "p99": None, "count": count, "failed": failed}
    return {"median": round(statistics.median(ms), 2), "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "count": count, "failed": failed}


def _cpu_percent(pid, seconds):
    c0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round(100 * (_cpu_seconds(pid) - c0) / (time.monotonic() - t0), 1)


def _rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def declined_record(seq, ident):
    """A declined tap: stored like any record, but no transaction for the acquirer to authorise."""
    return record.encode(ident, seq, 1_800_000_000 + seq, record.KIND_QR_CPM, 200, 156, record.DECLINED,
                         record.REASON_UNREADABLE, 1, bytes(16), [])


class NonReaders:
    """Authenticated terminals that upload records as fast as their socket takes them, each frame under a
    new sequence number (ignoring the window, as a broken or hostile terminal may), and never read.
    They run in a process of their own, so their work does not slow the client that measures."""

    def __init__(self, port, count, timeout=60.0):
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self.ready = ctx.Event()
        self.sent = ctx.Value("q", 0)
        self.proc = ctx.Process(target=self._run, args=(port, count), daemon=True)
        self.proc.start()
        if not self.ready.wait(timeout):
            self.close()
            raise RuntimeError("the non-reading terminals could not authenticate")

    def _run(self, port, count):
        links = []
        for i in range(count):
            ident = NON_READER + i.to_bytes(4, "big")
            sock, term, _ = handshake(port, ident, _address(3, i + 1))
            sock.setblocking(False)
            links.append([sock, term, ident, 0, b""])  # socket, peer, id, last seq, unsent bytes
        self.ready.set()
        while not self.stop.is_set():
            busy = False
            for entry in links:
                sock, term, ident, seq, unsent = entry
                if not unsent:
                    recs = [declined_record(seq + k, ident) for k in range(1, 5)]
                    seq += 4
                    unsent = link.wire(term.session.seal(link.encode(link.RECORDS, link.records(recs, ident),
                                                                     seq // 4, 0, None, link.FLAG_SEQ)))
                try:
                    unsent = unsent[sock.send(unsent):]
                    busy = True
                except OSError:
                    pass
                entry[3], entry[4] = seq, unsent
            if not busy:
                self.stop.wait(0.01)
        self.sent.value = sum(entry[3] for entry in links)
        for entry in links:
            entry[0].close()

    def close(self):
        """Stop them; the number of records they sent."""
        self.stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        return self.sent.value


class Slowloris:
    """Connections that send one byte each per `period` seconds and never finish a frame."""

    def __init__(self, port, count, period=1.0):
        self.socks = [_connect(port, _address(2, i + 1)) for i in range(count)]
        self.period = period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for sock in self.socks:
                try:
                    sock.send(b"\x55")  # never the 0x00 that ends a frame
                except OSError:
                    pass
            self.stop.wait(self.period)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def flood(port, hellos, seconds):
    """Send up to `hellos` HELLOs of an unknown terminal from one address within `seconds`."""
    one = link.wire(link.encode(link.HELLO, link.hello(b"ZFLOOD00", "flood", peer.CAPS, 4, 512, bytes(16))))
    chunk = one * 1000
    sent = connections = 0
    deadline = time.monotonic() + seconds
    while sent < hellos and time.monotonic() < deadline:
        try:
            sock = _connect(port, "127.0.0.9", 2.0)
        except OSError:
            continue
        connections += 1
        try:
            while sent < hellos:
                n = sock.send(chunk[:(hellos - sent) * len(one)])
                sent += n // len(one)
        except OSError:
            pass
        finally:
            sock.close()
    return {"hellos": sent, "connections": connections}


def _wait_listening(proc, port, deadline=20.0):
    limit = time.monotonic() + deadline
    while True:
        try:
            _connect(port, LEGIT_ADDRESS, 1.0).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > limit:
                raise RuntimeError("the collector did not listen") from None
            time.sleep(0.05)


def run_load(db, idle=2000, slowloris=500, non_reading=50, handshakes=50, hellos=100000,
             cpu_seconds=3.0, handshake_timeout=120.0, flood_seconds=30.0):
    store = Store(db)
    store.register(LEGIT.hex(), _key(LEGIT))
    for i in range(non_reading):
        ident = NON_READER + i.to_bytes(4, "big")
        store.register(ident.hex(), _key(ident))
    store.close()
    port = _free_port()
    log_path = db + ".log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                                 "127.0.0.1:%d" % port, "--handshake-timeout", str(handshake_timeout),
                                 "--max-connections", str(idle + slowloris + non_reading + 100)],
                                cwd=build.ROOT, stdout=log, stderr=log)
    held, loris, readers = [], None, None
    result = {"idle": idle, "slowloris": slowloris, "non_reading": non_reading,
              "handshake_timeout_s": handshake_timeout}
    try:
        _wait_listening(proc, port)
        result["handshake_ms_alone"] = _latencies(port, handshakes, 4)
        for i in range(idle):
            held.append(_connect(port, _address(1, i + 1)))
        time.sleep(0.5)
        result["cpu_percent_idle"] = _cpu_percent(proc.pid, cpu_seconds)
        result["rss_mb_idle"] = _rss_mb(proc.pid)
        loris = Slowloris(port, slowloris)
        readers = NonReaders(port, non_reading)
        time.sleep(0.5)
        cpu = {}
        probe = threading.Thread(target=lambda: cpu.update(p=_cpu_percent(proc.pid, cpu_seconds)))
        probe.start()
        result["handshake_ms_loaded"] = _latencies(port, handshakes, 5)
        t0 = time.monotonic()
        acq = subprocess.run([sys.executable, "-m", "host_sim", "acquirer", "--db", db], cwd=build.ROOT,
                             capture_output=True, timeout=120)
        result["acquirer"] = {"exit": acq.returncode, "seconds": round(time.monotonic() - t0, 2),
                              "error": acq.stderr.decode(errors="replace").strip().splitlines()[-1:]}
        probe.join()
        result["cpu_percent_loaded"] = cpu["p"]
        result["rss_mb_loaded"] = _rss_mb(proc.pid)
        alive = sum(1 for s in held if _open(s))
        result["idle_still_connected"] = alive
        check = Store(db)
        result["records_stored"] = check.query("SELECT count(*) FROM records")[0][0]
        result["authorised"] = check.query("SELECT count(*) FROM authorisations")[0][0]
        check.close()
        loris.close()
        result["non_reading_records_sent"] = readers.close()
        loris = readers = None
        for s in held:
            s.close()
        held = []
        time.sleep(0.5)
        before = os.path.getsize(log_path)
        t0 = time.monotonic()
        result["flood"] = flood(port, hellos, flood_seconds)
        result["flood"]["seconds"] = round(time.monotonic() - t0, 2)
        time.sleep(1.0)
        result["flood"]["log_bytes"] = os.path.getsize(log_path) - before
        result["flood"]["handshake_ms_after"] = _latencies(port, 5, 6)["median"]
        result["collector_alive"] = proc.poll() is None
    finally:
        for thing in (loris, readers):
            if thing is not None:
                thing.close()
        for s in held:
            s.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result["log_bytes_total"] = os.path.getsize(log_path)
    return result


def _open(sock):
    """True while the collector has not closed this connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def run(args):
    with tempfile.TemporaryDirectory(prefix="zhifu-bench-load-") as tmp:
        return run_load(os.path.join(tmp, "collector.db"), args.idle, args.slowloris, args.non_reading,
                        hellos=args.hellos)


def add_arguments(parser):
    parser.add_argument("--idle", type=int, default=2000, help="connections that send nothing")
    parser.add_argument("--slowloris", type=int, default=500, help="connections sending a byte a second")
    parser.add_argument("--non-reading", type=int, default=50, help="authenticated terminals that never read")
    parser.add_argument("--hellos", type=int, default=100000, help="HELLOs in the flood")
