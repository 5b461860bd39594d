"""The host end of link protocol v1 (protocol/SPEC.md), without I/O: bytes in, bytes out, so the same
code serves a serial port, a pty and a TCP connection.

A terminal must be provisioned (its id and device key in the store, `python -m host_sim provision`); an
unknown terminal or a wrong proof is refused with an ERROR, logged, and nothing it sends is stored.  The
host's AUTH tells the terminal the highest sequence number held for it (Store.seq_high).  A RECORDS
frame is acknowledged only after its transaction committed; records the collector already has are
counted as duplicate receipts, never stored twice.  A record the host will not store (another record
holds its number, it does not decode, it names another terminal, an unknown version) is kept aside in
the same transaction with its raw bytes and named in a REFUSED; the good ones of the frame are stored
and the frame acknowledged, so one bad record never stalls the terminal.  Altered or replayed frames are
dropped, counted and logged; an authentic frame that does not decode is kept aside and answered with
ERROR 3; a database failure with ERROR 9 (the frame is not acknowledged, so it comes again).
Stored records are authorised afterwards, outside the frame's
transaction (Backoffice.run_authorisations); a deny list that grew is offered at the next tick."""

import hashlib
import logging
import sqlite3
import time

from host_sim.backend.backoffice import health_names
from host_sim.backend.log_limit import peer_log, shown
from host_sim.backend.store import REFUSED_FRAME, REFUSED_NAMES, StoreError
from protocol import bundle, fleet, frame, link, peer, record, refusal

log = logging.getLogger("collector")

HOST_ID = b"ZFHOST01"
HOST_WINDOW = 128  # frames a terminal may have in flight to us: we buffer nothing, so the bitmap is the limit
ONLINE_POLL_MS = 10  # how soon a session looks again for an online answer from a worker thread
HOST_TIME_BOUND_MS = 20  # our own clock's uncertainty (NTP-disciplined host), sent in TIME


def frame_for(payload_size):
    """The max_frame to announce for a receiver that takes payloads up to payload_size: the wire() size
    of the longest such payload, so link.max_payload(frame_for(p)) == p (SPEC "max_frame and the payload")."""
    return 1 + payload_size + 4 + (payload_size + 4) // 254 + 1 + 1


class Reader(frame.FrameReader):
    """The frame reader, also counting the frames dropped for their length (answered with ERROR 7)."""

    overlong = 0

    def _complete(self, frames):
        if self._overflow:
            self.overlong += 1
        super()._complete(frames)


class Session:
    """One link to one terminal, without I/O."""

    def __init__(self, store, clock=None, backoffice=None, wallclock=time.time):
        self.store = store
        self.clock = clock or (lambda: int(time.monotonic() * 1000))
        self.wallclock = wallclock  # seconds since 1970, answered to TIME
        self.backoffice = backoffice
        self.frames = Reader()
        # announce the frame size whose payload our FrameReader takes (SPEC: announce what you accept)
        self.peer = peer.Peer(peer.ROLE_HOST, HOST_ID, lambda tid: store.device_key(tid.hex()), "collector",
                              window=8, max_frame=frame_for(frame.MAX_PAYLOAD), rx_window=HOST_WINDOW)
        self.peer.seq_floor = lambda tid: store.seq_high(tid.hex())
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
        self.records_refused = 0  # records kept aside (conflict, malformed, wrong terminal, unsupported)
        self._verdicts_due = False  # refused records may wait to be named in a REFUSED
        self._verdicts = []  # (frame seq, [record seq]) of REFUSED frames in flight
        self._overlong = 0

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
            self._keep_malformed()
            self._log_events()
        if self.frames.overlong != self._overlong:
            self._overlong = self.frames.overlong
            self.peer.unsolicited(link.E_TOO_LARGE, "frame longer than the announced max_frame %d"
                                  % self.peer.max_frame, now)
        self._verdicts_delivered()
        self._send_verdicts()
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

    @property
    def finished(self):
        """The link is done (ERROR 4/5 sent, or the terminal said BYE): send the reply, then close the
        connection (TCP) or start a new session (serial).  SPEC "ERROR" and "BYE"."""
        return self.peer.finished

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
                self._verdicts = []
                self._verdicts_due = True  # verdicts of earlier sessions that never got through
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
            if not self.peer.peer_takes(link.TIME):
                return True  # a terminal that cannot take our answer: nothing to answer with
            now_ms = int(self.wallclock() * 1000)
            if msg["unix_ms"] and msg["bound_ms"] != 0xFFFFFFFF:  # a synced terminal: its drift, for monitoring
                self.store.put_clock(self.terminal, msg["unix_ms"] - now_ms, msg["bound_ms"])
            body = link.time_sync(msg["echo"], now_ms, HOST_TIME_BOUND_MS)
            return self.peer.send(link.TIME, body) is not None  # window full: not acked, it comes again
        if kind == "STATUS":
            if self.backoffice is not None:
                self.backoffice.status(self.terminal, msg)
            log.info("STATUS from %s: depth %d health 0x%02x (%s)%s", self.terminal, msg["depth"], msg["health"],
                     " ".join(health_names(msg["health"])),
                     (", %d quarantined, %d damaged" % (msg["quarantined"], msg["damaged"]) if "quarantined" in msg
                      else "") + (", log %d lines %d alerts" % (msg["log_lines"], msg["log_alerts"])
                                  if "log_lines" in msg else ""))
            return True
        if kind == "CONFIG_CHUNK":
            self._config_reply(msg)
            return True
        if kind == "ONLINE_REQUEST":
            self._online_request(msg)
            return True
        log.info("%s from %s: %r", kind, self.terminal, msg)
        return True

    def _verdict(self, raw):
        """(decoded record, None) or (None, (seq or None, REFUSED reason, why)) for one received record."""
        if len(raw) < 16:
            return None, (None, refusal.MALFORMED, "too short to carry its sequence number")
        seq = record.seq_of(raw)
        if raw[0] != record.VERSION:
            return None, (seq, refusal.UNSUPPORTED, "record version %d" % raw[0])
        try:
            rec = record.decode(raw)
        except record.RecordError as e:
            return None, (seq, refusal.MALFORMED, str(e))
        if rec["terminal"] != self.peer.terminal:
            return None, (seq, refusal.WRONG_TERMINAL, "record of terminal %s" % rec["terminal"].hex())
        rec["raw"] = raw
        return rec, None

    def _records(self, msg):
        """Store the good records of a frame and keep the bad ones aside, in one transaction; True
        (acknowledge) once it committed.  A database failure: ERROR 9 and no ACK (the frame comes again)."""
        recs = []
        bad = []
        for k in range(len(msg["records"])):
            raw = msg["records"][k]
            rec, why = self._verdict(raw)
            if rec is not None:
                recs.append(rec)
            else:
                bad.append((k, raw) + why)
        try:
            with self.store.transaction():
                new, conflicts = self.store.store_verdicts(recs) if recs else (0, [])
                for rec in recs:
                    if rec["seq"] in conflicts:
                        self.store.refuse(self.terminal, rec["seq"], refusal.CONFLICT, rec["raw"],
                                          "another record holds this number")
                for k, raw, seq, reason, why in bad:
                    self.store.refuse(self.terminal, seq, reason, raw,
                                      "record %d of frame %d: %s" % (k, msg["seq"], why))
                if new and self.backoffice is not None:
                    self.backoffice.authorise([r for r in recs if r["seq"] not in conflicts])
        except (sqlite3.Error, StoreError) as e:
            # Not acknowledged: the terminal keeps the records and sends them again.
            self.refused += 1
            log.warning("could not store a RECORDS frame from %s: %s", self.terminal, e)
            self.peer.unsolicited(link.E_STORAGE, "storage failed: frame %d not stored" % msg["seq"], self.clock())
            return False
        online = getattr(self.backoffice, "online", None)
        if new and online is not None:
            online.records(self.terminal, recs)
        self.stored += new
        self.duplicate_receipts += len(recs) - new - len(conflicts)
        for seq in conflicts:
            log.warning("terminal %s record #%d conflicts with the stored one: refused, kept aside", self.terminal,
                        seq)
        for k, _, seq, reason, why in bad:
            log.warning("terminal %s record %d of frame %d (#%s) refused (%s): %s", self.terminal, k, msg["seq"],
                        "?" if seq is None else seq, REFUSED_NAMES[reason], shown(why))
            if seq is None:  # no number to name in REFUSED: say which record of which frame
                self.peer.error(link.E_MALFORMED, "record %d of frame %d: %s" % (k, msg["seq"], why))
        refused = len(conflicts) + len(bad)
        if refused:
            self.records_refused += refused
            self._verdicts_due = True
        if new:
            self._offer_deny_list()
        return True

    # -- verdicts (protocol/SPEC.md "REFUSED") ---------------------------------------------------

    def _send_verdicts(self):
        """Name the refused records the terminal has not yet been told about, as many a message as fit.
        A terminal without CAP_REFUSED is told nothing; its records stay kept aside and logged."""
        if not self._verdicts_due or not self.peer.up() or not self.peer.peer_takes(link.REFUSED):
            return
        flying = set()
        for _, seqs in self._verdicts:
            flying.update(seqs)
        pending = [v for v in self.store.unnotified(self.terminal) if v[0] not in flying]
        per = min(255, (self.peer.max_body() - 1) // 5)  # entries that fit the terminal's frame
        while pending and self.peer.can_send():
            batch = pending[:per]
            fseq = self.peer.send(link.REFUSED, link.refused(batch))
            if fseq is None:
                break
            self._verdicts.append((fseq, [s for s, _ in batch]))
            del pending[:per]
        self._verdicts_due = bool(pending)

    def _verdicts_delivered(self):
        """REFUSED frames the terminal acknowledged: their records are marked notified."""
        if not self._verdicts or not self.peer.up():
            return
        base = self.peer.sender.base
        done = [v for v in self._verdicts if v[0] < base]
        if done:
            self._verdicts = [v for v in self._verdicts if v[0] >= base]
            seqs = []
            for _, s in done:
                seqs += s
            self.store.notified(self.terminal, seqs)

    def _keep_malformed(self):
        """Authentic frames whose body did not decode (the peer answered ERROR 3): kept for the operator."""
        if not self.peer.malformed:
            return
        for seq, payload in self.peer.malformed:
            try:
                self.store.refuse(self.terminal or "?", None, REFUSED_FRAME, payload, "frame %d did not decode" % seq)
            except sqlite3.Error as e:
                log.warning("could not keep malformed frame %d of %s: %s", seq, self.terminal, e)
        del self.peer.malformed[:]

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
        if self.backoffice is None or not self.peer.up() or not self.peer.peer_takes(link.CONFIG_OFFER):
            return  # never offer config to a terminal that did not announce CAP_CONFIG
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
