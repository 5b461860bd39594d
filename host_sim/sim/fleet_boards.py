"""Full virtual boards in `sim fleet --boards K`, on the fleet's simulated clock.

Each board is the real firmware on MicroPython (host_sim/tools/vboard.py) whose time reads the fleet's
clock file (run.py's Clock, holding the simulated UNIX time), provisioned against the fleet's collector
database before the collector starts; the collector serves each board's uplink pty (`collector --serial`)
next to the protocol-level terminals' TCP.  The seed draws each board's tap times over the fleet's
simulated span and the passengers' CPM codes (counter and unpredictable number).  A board's tap is
presented on its scanner with the clock standing at the tap's simulated second and waits for the display's
answer, so the record carries that second; then the clock moves on with the fleet's ticks.

Latency and queue depth are seen from outside the board: a watcher thread polls the collector's database
every POLL_S, so a board's tap-to-stored latency is wall time from the display's answer to the poll that
first sees its record (up to POLL_S late); its queue depth is the most answered taps not yet stored.

An observer (host_sim/sim/timeline.py's contract) is told, from the caller's thread, of each board's
link, taps, display answers, queue depth and stored records.

Board records are keyed with device keys and a fleet token key that each run makes anew, so their part of
the digest is run.py's fields (terminal, seq, time, kind, amount, currency, decision, reason, fare, ATC).
"""

import hashlib
import os
import random
import re
import sqlite3
import threading
import time

from host_sim import demo
from host_sim.backend import sqldb
from host_sim.emulators import wallet
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.sim import passengers
from host_sim.sim.run import Clock
from host_sim.tools import provision, vboard
from host_sim.tools.events import EventLog
from protocol import record

UID_BASE = 5643000001  # the boards' hardware ids: apart from the protocol-level terminals' ZF... ids
PHONES_PER_BOARD = 40
BOOT_TIMEOUT_S = 120  # many boards booting on a busy machine
POLL_S = 0.02
MONEY = re.compile(r"(\d+)\.(\d\d)")  # the fare on a PAID display, e.g. "PAID 2.00"


class BoardError(Exception):
    """A board did not boot, provision or answer: one line for the user."""


class Board:
    """One virtual board with its scanner and display events; the collector serves its uplink."""

    def __init__(self, index, workdir, clock_path):
        self.index = index
        self.name = "board%d" % (index + 1)
        self.board = vboard.VirtualBoard(os.path.join(workdir, "flash-%s.img" % self.name),
                                         uid=str(UID_BASE + index), clock=clock_path).start()
        self.events = EventLog(self.board.ports["events"])
        self.scanner = ScannerEmulator(self.board.ports["scanner"])
        self.phones = demo.passengers(PHONES_PER_BOARD, first=index * PHONES_PER_BOARD)
        self.terminal = None  # its id at the collector, after provisioning
        self.taps = 0
        self.accepted = set()  # seqs the display answered as paid
        self.answered_at = {}  # seq -> wall time of the answer, until stored
        self.max_depth = 0
        self.latencies = []

    def provision(self, db):
        self.board.wait_console(b"ready:", timeout=BOOT_TIMEOUT_S)
        mark = self.board.console_mark()
        self.terminal = provision.provision(self.board.ports["console"], db)
        self.board.wait_console(b"ready:", timeout=BOOT_TIMEOUT_S, since=mark)

    def code(self, rng):
        """The next passenger's CPM code (demo's phones, run.py's draw)."""
        phone = self.phones[rng.randrange(len(self.phones))]
        phone.atc += 1
        return wallet.code(phone.profile, phone.pan, phone.expiry, phone.atc, un=rng.randbytes(4))

    def present(self, payload):
        """Show a code and wait for the display's answer (shown again if none comes)."""
        for _ in range(demo.MAX_RETAPS + 1):
            seen = len(self.events.items)
            self.scanner.present(payload)
            _, ev = demo.outcome(self.events, seen, passengers.ANSWER_TIMEOUT_S)
            if ev is not None:
                return ev
        raise BoardError("%s gave no answer to its tap %d; its console ends: %s"
                         % (self.name, self.taps, self.board.console_text()[-300:].replace("\n", " | ")))

    def close(self):
        self.events.close()
        self.scanner.close()
        self.board.stop()


class Boards:
    """K boards, their seeded taps and the watcher that sees their records stored."""

    def __init__(self, count, workdir, seed, taps, simulated_s, epoch, observer=None):
        self.epoch = epoch
        self.observer = observer
        self.stored_events = []  # (board, seq, latency_s) the watcher saw, for the observer
        self.clock = Clock(os.path.join(workdir, "clock"), epoch)
        self.rng = random.Random("boards %d" % seed)  # apart from the terminals' draw: --boards 0 is unchanged
        self.boards = []
        self.db = None  # the collector's database, once the boards are provisioned against it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = None
        try:
            for i in range(count):
                self.boards.append(Board(i, workdir, self.clock.path))
        except (OSError, RuntimeError, TimeoutError, vboard.FlashInUse) as e:
            self.close()
            raise BoardError("board %d of %d did not start: %s" % (len(self.boards) + 1, count, e)) from None
        except BaseException:
            self.close()
            raise
        self.events = sorted((self.rng.randrange(simulated_s), i) for i in range(count) for _ in range(taps))
        self.next = 0

    def provision(self, db):
        try:
            for b in self.boards:
                b.provision(db)
        except (TimeoutError, provision.ProvisionError, OSError) as e:
            raise BoardError("a board could not be provisioned: %s" % e) from None
        self.db = db

    def uplinks(self):
        """`collector --serial` arguments: each board's uplink pty."""
        return [arg for b in self.boards for arg in ("--serial", b.board.ports["uplink"])]

    def start_watching(self):
        if self.observer is not None:
            for b in self.boards:
                self.observer.link(b.name, "up")
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def next_at(self):
        """The simulated second of the next board tap, or None when all are done."""
        return self.events[self.next][0] if self.next < len(self.events) else None

    def tap_until(self, end):
        """Present every board tap before simulated second `end`, in time order, each at its second."""
        while self.next < len(self.events) and self.events[self.next][0] < end:
            when, index = self.events[self.next]
            self.next += 1
            b = self.boards[index]
            self.clock.set(self.epoch + when)
            b.taps += 1
            ev = b.present(b.code(self.rng))
            seq = demo.seq_of(ev)
            paid = ev["text"].startswith("PAID") and seq is not None
            if paid:
                now = time.perf_counter()
                with self._lock:
                    b.accepted.add(seq)
                    b.answered_at[seq] = now
                    b.max_depth = max(b.max_depth, len(b.answered_at))
            if self.observer is not None:
                self._tell(b, when, ev, paid)

    def _tell(self, b, when, ev, paid):
        text, detail = ev.get("text", ""), ev.get("detail", "")
        money = MONEY.search(text) if paid else None
        self.observer.display(b.name, text, detail)
        self.observer.tap(when, b.name, "cpm", text, "" if paid else detail,
                          int(money.group(1)) * 100 + int(money.group(2)) if money else 0, 0)
        with self._lock:
            depth = len(b.answered_at)
        self.observer.queue(when, b.name, depth)

    def _tell_stored(self):
        with self._lock:
            events, self.stored_events = self.stored_events, []
        sim_s = self.clock.now - self.epoch
        for b, seq, latency in events:
            self.observer.stored(sim_s, b.name, seq, latency)
        for b in {b for b, _, _ in events}:
            with self._lock:
                depth = len(b.answered_at)
            self.observer.queue(sim_s, b.name, depth)

    def set_clock(self, sim_s):
        self.clock.set(self.epoch + sim_s)

    def busy(self):
        with self._lock:
            return any(b.answered_at for b in self.boards)

    def settle(self, wall_limit):
        """Wait until every answered tap is stored or `wall_limit` (perf_counter) passes; True if settled."""
        settled = True
        while self.busy():
            if time.perf_counter() > wall_limit:
                settled = False
                break
            time.sleep(POLL_S)
        if self.observer is not None:
            self._tell_stored()
        return settled

    def _watch(self):
        con = sqldb.connect(self.db)
        try:
            while not self._stop.wait(POLL_S):
                for b in self.boards:
                    with self._lock:
                        waiting = min(b.answered_at) if b.answered_at else None
                    if waiting is None:
                        continue
                    try:
                        seqs = [r[0] for r in con.execute("SELECT seq FROM records WHERE terminal = ? AND seq >= ?",
                                                          (b.terminal, waiting)).fetchall()]
                    except sqlite3.OperationalError:  # the collector holds the database a moment: look again
                        continue
                    now = time.perf_counter()
                    with self._lock:
                        for seq in seqs:
                            at = b.answered_at.pop(seq, None)
                            if at is not None:
                                b.latencies.append(now - at)
                                if self.observer is not None:
                                    self.stored_events.append((b, seq, now - at))
        finally:
            con.close()

    def check(self, db):
        """(figures, digest hex, [(terminal, largest queue depth)]) from the collector's database.  Stored,
        lost and duplicates count tap records (a retried tap stores a second record of the same token and
        ATC); the boards' other records (KIND_SEAL_KEY: keys wrapped to the collector) are counted apart
        and covered by the digest."""
        con = sqldb.connect(db)
        try:
            rows = con.execute("SELECT terminal, seq, time, kind, amount, currency, decision, reason, fare_id, "
                               "hex(atc), token FROM records WHERE terminal IN (%s) ORDER BY terminal, seq"
                               % ",".join("?" * len(self.boards)), [b.terminal for b in self.boards]).fetchall()
        finally:
            con.close()
        h = hashlib.sha256()
        for row in rows:
            h.update(repr(tuple(row[:10])).encode())
        others = sum(1 for r in rows if r[3] not in record.TAP_KINDS)  # the boards' seal-key records
        rows = [r for r in rows if r[3] in record.TAP_KINDS]
        stored = {(r[0], r[1]) for r in rows}
        accepted = {(b.terminal, seq) for b in self.boards for seq in b.accepted}
        latencies = [s for b in self.boards for s in b.latencies]
        figures = {
            "boards": len(self.boards),
            "taps": sum(b.taps for b in self.boards),
            "accepted": len(accepted),
            "stored": len(rows),
            "lost": len(accepted - stored),
            "duplicates": len(rows) - len({(r[10], r[9]) for r in rows}),
            "other_records": others,
            "latency_ms": [round(s * 1000, 2) for s in latencies],
        }
        return figures, h.hexdigest(), [(b.terminal, b.max_depth) for b in self.boards]

    def close(self):
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        for b in self.boards:
            b.close()
