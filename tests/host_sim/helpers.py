"""What several host_sim tests share: one registered terminal and its key, an in-memory terminal wired
to a collector session, a collector process on a free TCP port, and a store whose group commit fails."""

import contextlib
import socket
import sqlite3
import subprocess
import sys

from host_sim.backend import host_session
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import bundle, frame, link, peer, record
from tests.waiting import wait_until

TERMINAL = b"VB\x00\x00\x01\x00\x00\x00"
KEY = bytes(range(32))

# Two card tokens: one the acquirer declines in the session tests, one it accepts.
BAD, GOOD = bytes([0xBB]) * 16, bytes([0x60]) * 16


def registered(tmp_path=None):
    """A store (in tmp_path, else in memory) that knows TERMINAL and its KEY."""
    store = Store(str(tmp_path / "c.db") if tmp_path else ":memory:")
    store.register(TERMINAL.hex(), KEY)
    return store


def tap_record(seq, token, atc):
    """An accepted QR tap of TERMINAL by the card `token`, with its ATC, as the journal holds it."""
    return record.encode(TERMINAL, seq, 1_800_000_000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                         token, [(record.EXT_ATC, atc.to_bytes(2, "big"))])


class Terminal:
    """A terminal-side Peer wired to a collector Session in memory; `wire` captures every uplink byte."""

    def __init__(self, session, key=KEY, terminal=TERMINAL, max_frame=256):
        self.session = session
        self.peer = peer.Peer(peer.ROLE_TERMINAL, terminal, key, "micropython 1.29.0 linux", window=8,
                              max_frame=max_frame, rx_window=4)
        self.reader = frame.FrameReader()
        self.wire = bytearray()
        self.now = 0
        self.peer.start(0)
        self.errors = []
        self.got = []  # every message the collector sent, in arrival order

    def _feed(self, reply):
        for q in self.reader.feed(reply):
            for m in self.peer.feed(q, self.now):
                self.got.append(m)
                if m["type"] == "ERROR":
                    self.errors.append(m["code"])

    def pump(self, rounds=50, tamper=None):
        """Run both ends until the terminal has nothing to send and no timer to wait for."""
        for _ in range(rounds):
            moved = False
            while True:
                p = self.peer.poll(self.now)
                if p is None:
                    break
                data = link.wire(p)
                if tamper:
                    data = tamper(data)
                self.wire += data
                self._feed(self.session.receive(data))
                moved = True
            if not moved:
                self.now += 100
                self._feed(self.session.receive(b""))  # the collector's own timers, as its serve loops do
                if self.peer.deadline(self.now) != 0:
                    break
        return self

    def upload(self, recs):
        assert self.peer.send(link.RECORDS, link.records(recs, TERMINAL), record.seq_of(recs[-1])) is not None
        return self.pump()


class ListeningTerminal(Terminal):
    """A terminal with the firmware's frame size that picks the collector's messages by type."""

    def __init__(self, session):
        super().__init__(session, max_frame=288)

    def take(self, kind):
        out = [m for m in self.got if m["type"] == kind]
        self.got = [m for m in self.got if m["type"] != kind]
        return out

    def answer(self, version, offset):
        self.peer.send(link.CONFIG_CHUNK, link.config_chunk(bundle.KIND_DENY, version, offset, b""), 0)
        return self.pump()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_collector(db, port, *extra):
    """`python -m host_sim collector` on `port`; returns (process, a connection to it) once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                             "127.0.0.1:%d" % port, *extra], cwd=build.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def connection():
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            assert proc.poll() is None, "collector did not listen"
            return None

    return proc, wait_until(connection, timeout=20, interval=0.1, what="the collector to listen")


class FailingStore(Store):
    """Fails the commit of the next `fail` groups, the way a full or broken disk would."""

    fail = 0

    @contextlib.contextmanager
    def group(self):
        with super().group():
            yield self
            if self.fail:
                self.fail -= 1
                raise sqlite3.OperationalError("disk I/O error (injected)")


def connect_session(store, term, backoffice=None):
    """A collector session on `store` that has completed the handshake with the bench terminal `term`."""
    session = host_session.Session(store, backoffice=backoffice)
    while not term.peer.up():
        term.fill()
        term.feed(session.receive(term.take(len(term.outbox))))
    return session


def committed_counts(db):
    """(records, distinct sequence numbers) that another connection to `db` sees committed."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*), count(DISTINCT seq) FROM records").fetchone()
    finally:
        con.close()
