"""What several host_sim tests share: one registered terminal and its key, an in-memory terminal wired
to a collector session, a collector process on a free TCP port, and a store whose group commit fails."""

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys

from firmware import decision, emv
from host_sim import issuers
from host_sim.backend import host_session, sqldb
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import bundle, fleet, frame, link, peer, record, seal, seal_open
from tests.waiting import wait_until

TERMINAL = b"VB\x00\x00\x01\x00\x00\x00"
KEY = bytes(range(32))

# Two card tokens: one the acquirer declines in the session tests, one it accepts.
BAD, GOOD = bytes([0xBB]) * 16, bytes([0x60]) * 16


def registered(tmp_path=None, token_key=True, db=None):
    """A store (on `db`, the fixture's database, or in tmp_path, else in memory) that knows TERMINAL and
    its KEY and, as provisioning leaves it, that the terminal holds the current fleet token key
    (token_key=False: it holds none)."""
    store = Store(db or (str(tmp_path / "c.db") if tmp_path else ":memory:"))
    store.register(TERMINAL.hex(), KEY)
    if token_key:
        store.set_delivered(TERMINAL.hex(), fleet.KIND_TOKEN_KEY, store.token_key()[0])
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

    def answer(self, version, offset, kind=bundle.KIND_DENY):
        self.peer.send(link.CONFIG_CHUNK, link.config_chunk(kind, version, offset, b""), 0)
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
    con = sqldb.connect(db)
    try:
        return con.execute("SELECT count(*), count(DISTINCT seq) FROM records").fetchone()
    finally:
        con.close()


# -- deferred authorisation: records whose card data the test can open -----------------------------

DATA_KEY = bytes(range(100, 132))  # the key the test terminal seals card data with
TAP_TIME = 1_800_000_000
CARDS = {  # profile: (PAN, expiry YYMM, PSN, AID) of cards the test issuers of host_sim/issuers.py issued
    "visa": ("4761739001010010", "2712", b"\x01", bytes.fromhex("A0000000031010")),
    "unionpay-card": ("6228480000000000018", "2905", b"\x00", bytes.fromhex("A000000333010101")),
}


def seal_for_test(plaintext, token):
    """An EXT_EMV_SEALED value under DATA_KEY as an epoch key (key id 1), without its key records."""
    return seal.seal_data(1, DATA_KEY, 0, plaintext, token)


def open_for_test(store, terminal, rec):
    """Stands in for the host's opener (host_sim/backend/sealing.open_sealed) with the test's epoch key."""
    return seal_open.open_data(DATA_KEY, rec["ext"][record.EXT_EMV_SEALED], rec["token"])


SEAL_VECTORS = os.path.join(build.ROOT, "protocol", "vectors", "seal.json")


def seal_key_file(tmp_path):
    """The golden vectors' collector key (protocol/vectors/seal.json) as a PEM file: (path, modulus)."""
    with open(SEAL_VECTORS) as f:
        v = json.load(f)
    path = str(tmp_path / "seal.pem")
    with open(path, "w") as f:
        f.write(v["private_key_pem"])
    return path, int(v["modulus"], 16)


class JournalStandIn:
    """What firmware/sealing.Sealer needs of the journal: the next sequence number and append(build)."""

    full = False

    def __init__(self, next_seq):
        self.next_seq = next_seq
        self.records = []

    def append(self, build):
        self.records.append(build(self.next_seq))
        self.next_seq += 1
        return self.next_seq - 1


def _tap_builder(t, terminal, when):
    def build(seq):
        return record.encode(terminal, seq, when, t.kind, t.amount, 156, record.ACCEPTED, 0, 1, t.token, t.extensions)
    return build


def sealed_records(cards, modulus, first_seq=1, when=TAP_TIME, terminal=TERMINAL):
    """Decoded records (with "raw") as a terminal journals contactless reads of `cards` with the firmware's
    Sealer to `modulus`: the epoch key's two KIND_SEAL_KEY records first, then one tap record per card."""
    from firmware import sealing

    journal = JournalStandIn(first_seq)
    d = decision.Decider(b"salt" * 4, sealer=sealing.Sealer(modulus, journal, terminal, lambda: when))
    for card in cards:
        journal.append(_tap_builder(d.decide_emv(card), terminal, when))
    out = []
    for raw in journal.records:
        rec = record.decode(raw)
        rec["raw"] = raw
        out.append(rec)
    return out


def card_read(profile="visa", atc=5, un=b"\x12\x34\x56\x78", amount=200, when=TAP_TIME, cryptogram=None):
    """What firmware/emv.read returns for a card of `profile` that signed the terminal data of a tap."""
    pan, expiry, psn, aid = CARDS[profile]
    iad = bytes.fromhex("06010A03A00000")
    signed = emv.terminal_data(amount, un, when)
    signed.update({0x9F36: atc.to_bytes(2, "big"), 0x82: b"\x00\x80", 0x9F10: iad})
    ac = cryptogram if cryptogram is not None else issuers.application_cryptogram(profile, pan, psn.hex(), signed)
    return {"aid": aid, "pan": pan, "expiry": expiry, "track2": None, "ac": ac, "cid": b"\x80",
            "atc": atc.to_bytes(2, "big"), "iad": iad, "aip": b"\x00\x80", "un": un, "psn": psn}


def contactless_record(seq, card, when=TAP_TIME, terminal=TERMINAL):
    """The record the terminal's decision writes for a contactless read, card data sealed with DATA_KEY."""
    d = decision.Decider(b"salt" * 4, sealer=seal_for_test).decide_emv(card)
    raw = record.encode(terminal, seq, when, d.kind, d.amount, 156, record.ACCEPTED, 0, 1, d.token, d.extensions)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def bundle_cli(*args):
    """`python -m host_sim bundle ARGS`: (exit status, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "host_sim", "bundle", *args], cwd=build.ROOT, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr
