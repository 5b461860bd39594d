"""The host end of link protocol v1 (protocol/SPEC.md), without I/O: bytes in, bytes out, so the same
code serves a serial port, a pty and a TCP connection.

A terminal must be provisioned (its id and device key in the store, `python -m host_sim provision`); an
unknown terminal or a wrong proof is refused with an ERROR, logged, and nothing it sends is stored.  A
RECORDS frame is acknowledged only after its transaction committed; records the collector already has
are counted as duplicate receipts, never stored twice.  Altered, replayed or malformed frames are
dropped, counted and logged.  Stored records are authorised afterwards, outside the frame's
transaction (Backoffice.run_authorisations); a deny list that grew is offered at the next tick."""

import hashlib
import logging
import sqlite3
import time

from host_sim.backend.backoffice import health_names
from host_sim.backend.log_limit import peer_log, shown
from protocol import bundle, fleet, frame, link, peer, record

log = logging.getLogger("collector")

HOST_ID = b"ZFHOST01"
HOST_WINDOW = 128  # frames a terminal may have in flight to us: we buffer nothing, so the bitmap is the limit
ONLINE_POLL_MS = 10  # how soon a session looks again for an online answer from a worker thread
HOST_TIME_BOUND_MS = 20  # our own clock's uncertainty (NTP-disciplined host), sent in TIME


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
        self._deny_changes = backoffice.deny_changes if backoffice is not None else 0
        self.gate = None  # called per frame before authentication; False: refuse it and the link
        self._online_out = []  # ONLINE_RESULT bodies from worker threads, sent at the next receive()
        self.online_waiting = 0  # ONLINE_REQUESTs not answered yet: deadline() polls for their answers
        self.gated = False  # the gate refused a frame: the caller closes the link

    def receive(self, data=b""):
        """Bytes from the terminal in, bytes to send back out; call with b"" now and then (timers)."""
        out = bytearray()
        now = self.clock()
        for payload in self.frames.feed(data):
            if self.gate is not None and not self.peer.up() and not self.gate():
                self.gated = True
                break
            for msg in self.peer.feed(payload, now, self._handle):
                if msg["type"] == "ERROR" and self.peer.up():
                    self._terminal_error(msg)
            self._log_events()
        if self.backoffice is not None and self.backoffice.deny_changes != self._deny_changes:
            self._deny_changes = self.backoffice.deny_changes
            self._offer_deny_list()
        self._send_online()
        self._send_chunks()
        while True:
            reply = self.peer.poll(now)
            if reply is None:
                break
            out += link.wire(reply)
        return bytes(out)

    def deadline(self):
        """Seconds until receive(b"") may have something to send; None: only the terminal's bytes can."""
        ms = self.peer.deadline(self.clock())
        if self.online_waiting or self._online_out:  # an answer comes from a worker thread: look soon
            ms = ONLINE_POLL_MS if ms is None else min(ms, ONLINE_POLL_MS)
        return None if ms is None else ms / 1000

    def _log_events(self):
        for what, detail in self.peer.events:
            if what == "up":
                self.terminal = detail
                self.store.hello(detail, self.peer.peer_hello["firmware"])
                log.info("terminal %s authenticated, running '%s'", detail, shown(self.peer.peer_hello["firmware"]))
                self.offer = self._chunk_at = None
                self._offer_deny_list()
            else:
                self.refused += 1
                peer_log.warning("refused: %s %s", what, shown(detail))
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
        if kind == "ONLINE_REQUEST":
            self._online_request(msg)
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
        online = getattr(self.backoffice, "online", None)
        if new and online is not None:
            online.records(self.terminal, recs)
        self.stored += new
        self.duplicate_receipts += len(recs) - new
        if new:
            self._offer_deny_list()
        return True

    # -- online authorisation of payment codes (host_sim/backend/online.py) -------------------------

    def _online_request(self, msg):
        online = getattr(self.backoffice, "online", None)
        if online is None:
            self._online_out.append(link.online_result(msg["request_id"], link.ONLINE_UNAVAILABLE, "no acquirer"))
            return
        self.online_waiting += 1
        online.request(self.terminal, msg, self._online_answer)

    def _online_answer(self, body):
        """From any thread: queue one ONLINE_RESULT (list.append is atomic); receive() sends it."""
        self._online_out.append(body)

    def _send_online(self):
        while self._online_out and self.peer.can_send() and self.peer.peer_has(link.CAP_ONLINE):
            self.peer.send(link.ONLINE_RESULT, self._online_out.pop(0))
            self.online_waiting = max(0, self.online_waiting - 1)

    # -- config bundles (protocol/SPEC.md "Config bundles") --------------------------------------

    def _offer_deny_list(self):
        """Offer what the terminal lacks, one bundle at a time: the current fleet token key (kind 4) first,
        then its deny-list delta, then the newest fleet bundle of each kind (fares, ticket keys:
        `collector --bundles DIR`).  A deny-list delta
        takes over from an open fleet offer (that one is offered again afterwards), so a slow or
        refused fleet bundle never holds up a declined card."""
        if self.backoffice is None or not self.peer.up():
            return
        if self.offer is not None and self.offer[0] in (bundle.KIND_DENY, fleet.KIND_TOKEN_KEY):
            return
        token_key = self.backoffice.token_key_bundle(self.terminal)
        if token_key is not None:  # the fleet token key first: without it the terminal takes no card
            if self._offer(*token_key):
                log.info("offering token key version %d to %s", token_key[1], self.terminal)
            return
        delta = self.backoffice.deny_delta(self.terminal)
        if delta is None:
            fleet_bundle = None if self.offer is not None else self.backoffice.fleet_bundle(self.terminal)
            if fleet_bundle is not None:
                self._offer(*fleet_bundle)
            return
        base, version, added, removed = delta
        if self._offer(bundle.KIND_DENY, version, bundle.deny_delta(base, version, added, removed)):
            log.info("offering deny list %d..%d (%d cards added, %d removed) to %s", base, version, len(added),
                     len(removed), self.terminal)

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
        if kind not in (bundle.KIND_DENY, fleet.KIND_TOKEN_KEY):
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
        log.warning("terminal %s: ERROR %d '%s'", self.terminal, msg["code"], shown(msg["text"]))
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
