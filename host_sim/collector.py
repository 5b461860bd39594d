"""The collector (backend): authenticates terminals and stores their uploaded records exactly once in SQLite.

`Session` is link protocol v1 (protocol/SPEC.md) without I/O: bytes in, bytes out, so the same code
serves a serial port, a pty and a TCP connection.  A terminal must be provisioned (its id and device
key in the `device_keys` table, `python -m host_sim provision`); an unknown terminal or a wrong proof
is refused with an ERROR, logged, and nothing it sends is stored.  A RECORDS frame is acknowledged only
after its transaction committed; records the collector already has are counted as duplicate receipts,
never stored twice.  Altered, replayed or malformed frames are dropped, counted and logged.

A frame's records and the acquirer's decisions on them are one transaction (host_sim/store.py).
serve_tcp group-commits the reads of all its links (host_sim/ingest.py); serve_serial, one terminal
at line rate, commits per frame.
"""

import asyncio
import hashlib
import logging
import os
import signal
import sqlite3
import threading
import time

from host_sim import acquirer, ingest
from host_sim.store import Store, StoreError
from protocol import bundle, frame, link, peer, record

__all__ = ["Store", "StoreError", "Backoffice", "Session", "serve_serial", "serve_tcp", "main"]

log = logging.getLogger("collector")

HOST_ID = b"ZFHOST01"
HOST_WINDOW = 128  # frames a terminal may have in flight to us: we buffer nothing, so the bitmap is the limit
HOST_TIME_BOUND_MS = 20  # our own clock's uncertainty (NTP-disciplined host), sent in TIME

HEALTH_NAMES = ((link.HEALTH_JOURNAL, "journal"), (link.HEALTH_CLOCK, "clock"), (link.HEALTH_CONFIG, "config"),
                (link.HEALTH_SCANNER, "scanner"), (link.HEALTH_NFC, "nfc"))


def health_names(health):
    """The STATUS health bits that are set, by name (protocol/SPEC.md "STATUS fields")."""
    return [name for bit, name in HEALTH_NAMES if health & bit]


class Backoffice:
    """What a session needs beyond record storage: the acquirer, config bundles per terminal, heartbeats.
    All of it kept in the Store (host_sim/store.py)."""

    def __init__(self, store, acquirer_=None, bundles=None):
        self.store = store
        self.acquirer = acquirer_
        self.bundles = bundles  # directory of signed fleet bundles (*.zfb, `python -m host_sim bundle make`)
        self._newest = None  # (directory mtime, {kind: (version, bytes)}) of that directory
        if acquirer_ is not None:  # records stored while no acquirer ran (or by an older collector)
            self._log(*acquirer.authorise_pending(store, acquirer_))

    def authorise(self, recs):
        """Decide a frame's newly received records; call it inside the transaction that stores them,
        so records and decisions commit together (and a group commit covers both)."""
        if self.acquirer is None:
            return
        rows = [(r["terminal"].hex(), r["seq"], r["token"], r["amount"], r["ext"].get(record.EXT_ATC))
                for r in recs if r["decision"] == record.ACCEPTED]
        if rows:
            with self.store.transaction():
                self._log(*acquirer.authorise(self.store, self.acquirer, rows))

    def _log(self, approved, declined, version=None):
        if declined:
            log.info("acquirer: %d approved, %d declined; deny list at version %d", approved, declined,
                     self.store.deny_list_version() if version is None else version)

    def deny_delta(self, terminal):
        """(base, version, tokens) the terminal still needs, at most one bundle's worth; None if current."""
        base = self.store.delivered_version(terminal, bundle.KIND_DENY)
        rows = self.store.deny_list_since(base, bundle.MAX_TOKENS)
        if not rows:
            return None
        return base, rows[-1][1], [r[0] for r in rows]

    def fleet_bundle(self, terminal):
        """(kind, version, bytes) of the newest fleet bundle of a kind the terminal lacks and did not
        refuse; None if current.  The directory is read again whenever its modification time changed (a
        bundle file was added, renamed or removed), so a new bundle reaches the next offer without a scan
        per uploaded frame."""
        if self.bundles is None:
            return None
        from host_sim import bundle as fleet_bundles

        changed = os.stat(self.bundles).st_mtime_ns
        if self._newest is None or self._newest[0] != changed:
            self._newest = (changed, fleet_bundles.newest(self.bundles))
        for kind, (version, data) in sorted(self._newest[1].items()):
            if version > self.store.delivered_version(terminal, kind) and \
                    not self.store.config_refused(terminal, kind, version):
                return kind, version, data
        return None

    def refused(self, terminal, kind, version, reason):
        """The terminal refused a fleet bundle (ERROR CONFIG_REJECTED): not offered to it again; a newer
        version of the kind is.  Kept for the operator: a refusal means a bad or mis-signed bundle."""
        self.store.refuse_config(terminal, kind, version, reason)

    def delivered(self, terminal, kind, version):
        self.store.set_delivered(terminal, kind, version)

    def status(self, terminal, msg):
        self.store.put_status(terminal, msg)


class Session:
    """One link to one terminal, without I/O."""

    def __init__(self, store, clock=None, backoffice=None, wallclock=time.time):
        self.store = store
        self.clock = clock or (lambda: int(time.monotonic() * 1000))
        self.wallclock = wallclock  # seconds since 1970, answered to TIME
        self.backoffice = backoffice
        self.frames = frame.FrameReader()
        self.peer = peer.Peer(peer.ROLE_HOST, HOST_ID, lambda tid: store.device_key(tid.hex()), "collector",
                              window=8, max_frame=link.MAX_FRAME, rx_window=HOST_WINDOW)
        self.terminal = None
        self.stored = 0
        self.duplicate_receipts = 0
        self.refused = 0
        self.offer = None  # (kind, version, bundle bytes) offered and not yet confirmed
        self._chunk_at = None  # next bundle offset to send, once the terminal said where it stands
        self.config_delivered = 0

    def receive(self, data=b""):
        """Bytes from the terminal in, bytes to send back out; call with b"" now and then (timers)."""
        out = bytearray()
        now = self.clock()
        for payload in self.frames.feed(data):
            for msg in self.peer.feed(payload, now, self._handle):
                if msg["type"] == "ERROR" and self.peer.up():
                    self._terminal_error(msg)
            self._log_events()
        self._send_chunks()
        while True:
            reply = self.peer.poll(now)
            if reply is None:
                break
            out += link.wire(reply)
        return bytes(out)

    def _log_events(self):
        for what, detail in self.peer.events:
            if what == "up":
                self.terminal = detail
                self.store.hello(detail, self.peer.peer_hello["firmware"])
                log.info("terminal %s authenticated, running %s", detail, self.peer.peer_hello["firmware"])
                self.offer = self._chunk_at = None
                self._offer_deny_list()
            else:
                self.refused += 1
                log.warning("refused: %s %s", what, detail)
        del self.peer.events[:]

    def _handle(self, msg):
        """A sequenced message from the authenticated terminal; True once it is safely processed."""
        kind = msg["type"]
        if kind == "RECORDS":
            return self._records(msg)
        if kind == "TIME":
            body = link.time_sync(msg["echo"], int(self.wallclock() * 1000), HOST_TIME_BOUND_MS)
            return self.peer.send(link.TIME, body) is not None  # window full: not acked, it comes again
        if kind == "STATUS":
            if self.backoffice is not None:
                self.backoffice.status(self.terminal, msg)
            log.info("STATUS from %s: depth %d health 0x%02x (%s)", self.terminal, msg["depth"], msg["health"],
                     " ".join(health_names(msg["health"])))
            return True
        if kind == "CONFIG_CHUNK":
            self._config_reply(msg)
            return True
        log.info("%s from %s: %r", kind, self.terminal, msg)
        return True

    def _records(self, msg):
        try:
            recs = []
            for raw in msg["records"]:
                rec = record.decode(raw)
                if rec["terminal"] != self.peer.terminal:
                    raise record.RecordError("record of terminal %s in a session of %s"
                                             % (rec["terminal"].hex(), self.terminal))
                rec["raw"] = raw
                recs.append(rec)
            with self.store.transaction():
                new = self.store.store(recs) if recs else 0
                if new and self.backoffice is not None:
                    self.backoffice.authorise(recs)
        except (record.RecordError, sqlite3.Error) as e:
            # Not acknowledged: the terminal keeps the records and sends them again.
            self.refused += 1
            log.warning("refused a RECORDS frame from %s: %s", self.terminal, e)
            return False
        self.stored += new
        self.duplicate_receipts += len(recs) - new
        if new:
            self._offer_deny_list()
        return True

    # -- config bundles (protocol/SPEC.md "Config bundles") --------------------------------------

    def _offer_deny_list(self):
        """Offer what the terminal lacks, one bundle at a time: its deny-list delta first, then the newest
        fleet bundle of each kind (fares, ticket keys: `collector --bundles DIR`).  A deny-list delta
        takes over from an open fleet offer (that one is offered again afterwards), so a slow or
        refused fleet bundle never holds up a declined card."""
        if self.backoffice is None or not self.peer.up():
            return
        if self.offer is not None and self.offer[0] == bundle.KIND_DENY:
            return
        delta = self.backoffice.deny_delta(self.terminal)
        if delta is None:
            fleet_bundle = None if self.offer is not None else self.backoffice.fleet_bundle(self.terminal)
            if fleet_bundle is not None:
                self._offer(*fleet_bundle)
            return
        base, version, tokens = delta
        if self._offer(bundle.KIND_DENY, version, bundle.deny_delta(base, version, tokens)):
            log.info("offering deny list %d..%d (%d cards) to %s", base, version, len(tokens), self.terminal)

    def _offer(self, kind, version, data):
        """CONFIG_OFFER with the per-terminal HMAC (a fleet bundle also carries the authority's RSA
        signature inside); False when the window is full (offered again after the next batch or session)."""
        digest = hashlib.sha256(data).digest()
        key = bundle.config_key(self.store.device_key(self.terminal))
        sig = bundle.signature(key, kind, version, len(data), digest)
        if self.peer.send(link.CONFIG_OFFER, link.config_offer(kind, version, len(data), digest, sig)) is None:
            return False
        self.offer = (kind, version, data)
        self._chunk_at = None
        if kind != bundle.KIND_DENY:
            log.info("offering fleet bundle kind %d version %d (%d bytes) to %s", kind, version, len(data),
                     self.terminal)
        return True

    def _config_reply(self, msg):
        """The terminal's CONFIG_CHUNK without data: where it stands with the offered bundle."""
        offer = self.offer
        if msg["data"] or offer is None or msg["kind"] != offer[0]:
            return
        kind, version, data = offer
        if msg["offset"] == bundle.REBASE and kind == bundle.KIND_DENY:
            log.info("terminal %s holds deny list version %d: rebasing", self.terminal, msg["version"])
            self.backoffice.delivered(self.terminal, kind, msg["version"])
            self.offer = None
            self._offer_deny_list()
        elif msg["version"] == version:
            if msg["offset"] >= len(data):
                self.backoffice.delivered(self.terminal, kind, version)
                self.config_delivered = version
                log.info("terminal %s has config kind %d version %d", self.terminal, kind, version)
                self.offer = None
                self._offer_deny_list()
            else:
                self._chunk_at = msg["offset"]

    def _terminal_error(self, msg):
        """An ERROR from the authenticated terminal.  CONFIG_REJECTED refers to the open offer (one at a
        time): a refused fleet bundle is recorded and not offered to that terminal again; a refused
        deny-list delta (made here, so a staging fault on the terminal) is offered again after the next
        batch or session."""
        log.warning("terminal %s: ERROR %d %s", self.terminal, msg["code"], msg["text"])
        if msg["code"] != link.E_CONFIG_REJECTED or self.offer is None:
            return
        kind, version, _ = self.offer
        self.offer = self._chunk_at = None
        if kind != bundle.KIND_DENY:
            self.backoffice.refused(self.terminal, kind, version, msg["text"])
            self._offer_deny_list()

    def _send_chunks(self):
        if self.offer is None or self._chunk_at is None:
            return
        kind, version, data = self.offer
        room = self.peer.max_body() - 9
        while self._chunk_at < len(data) and self.peer.can_send():
            piece = data[self._chunk_at:self._chunk_at + room]
            self.peer.send(link.CONFIG_CHUNK, link.config_chunk(kind, version, self._chunk_at, piece))
            self._chunk_at += len(piece)

    def counters(self):
        errors = dict(self.peer.errors)
        errors["crc"] = self.frames.errors
        return errors


def serve_serial(port, store, stop, capture=None, backoffice=None):
    """Blocking loop for a serial port or pty (pyserial URL or path); returns the Session at stop.
    `capture`, a bytearray, receives a copy of every byte the terminal sent (tests, diagnosis)."""
    import serial

    ser = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
    session = Session(store, backoffice=backoffice)
    try:
        while not stop.is_set():
            data = ser.read(512)
            if capture is not None:
                capture += data
            reply = session.receive(data)  # also when nothing came: retransmission timers
            if reply:
                ser.write(reply)
    finally:
        ser.close()
    return session


async def serve_tcp(host, port, store, backoffice=None):
    """Serve terminals over TCP; every link's reads share group commits (host_sim/ingest.py)."""
    committer = ingest.GroupCommitter(store)

    async def client(reader, writer):
        session = Session(store, backoffice=backoffice)
        peer = writer.get_extra_info("peername")
        log.info("connection from %s", peer)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.1)
                except asyncio.TimeoutError:
                    data = None
                if data == b"":
                    break
                if data:
                    reply = await committer.receive(session, data)
                else:
                    reply = session.receive(b"")  # timers only: nothing to store, nothing to wait for
                if reply:
                    writer.write(reply)
                    await writer.drain()
        except StoreError as e:
            log.error("closing the link of %s: %s; it will send its records again", session.terminal or peer, e)
        except ConnectionError as e:
            log.info("connection from %s lost: %s", peer, e)
        finally:
            writer.close()

    server = await asyncio.start_server(client, host, port)
    server.committer = committer  # type: ignore[attr-defined]  # counters for tests and benchmarks
    return server


def main(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = Store(args.db, args.crash_after_commits)
    rules = acquirer.load_rules(args.acquirer_rules) if args.acquirer_rules else None
    office = Backoffice(store, acquirer.Acquirer(rules), args.bundles)
    stop = threading.Event()
    threads = []
    for port in args.serial or ():
        t = threading.Thread(target=serve_serial, args=(port, store, stop, None, office), daemon=True)
        t.start()
        threads.append(t)

    async def run():
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a service manager's stop: finish and close cleanly
            loop.add_signal_handler(sig, done.set)
        if not args.listen:
            await done.wait()
            return
        host, _, port = args.listen.rpartition(":")
        server = await serve_tcp(host or "127.0.0.1", int(port), store, office)
        log.info("listening on %s", args.listen)
        async with server:
            await done.wait()
        c = server.committer
        log.info("ingest: %d frames in %d group commits", c.frames_in_groups, c.groups)

    try:
        asyncio.run(run())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=1)
        store.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="SQLite database file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="accept terminals over TCP")
    parser.add_argument("--serial", metavar="PORT", action="append", help="serve a serial port or pty (repeatable)")
    parser.add_argument("--acquirer-rules", metavar="FILE",
                        help="JSON rules of the simulated acquirer run after each stored batch (default: approve all)")
    parser.add_argument("--bundles", metavar="DIR",
                        help="signed fleet bundles (DIR/*.zfb, `bundle make`): the newest of each kind goes to "
                             "every terminal that lacks it")
    parser.add_argument("--crash-after-commits", metavar="N", type=int,
                        help="fault injection: SIGKILL the collector right after its Nth record commit, "
                             "before that commit is acknowledged")
