"""What an upload session does besides records: TIME within bounds, STATUS heartbeats, config bundles,
the host's sequence floor (seq_high in its AUTH) and its per-record verdicts (REFUSED: quarantine).

Loaded by the uplink when it starts (after boot, so the boot-time modules get an unfragmented heap);
the config receiver (firmware/config/receiver.py) only when the first bundle is offered.  The rules are in
protocol/SPEC.md, Link protocol section 7.
"""

import gc
import struct

from firmware import eventlog, quarantine
from protocol import link, record

STATUS_MS = 5000  # heartbeat period while the session is up
MIN_EPOCH_S = 1704067200  # 2024-01-01: a clock before this was never right
MAX_EPOCH_S = 4102444800  # 2100-01-01
TIME_RTT_MAX_MS = 10000  # an answer older than this says nothing about the time
DRIFT_PPM = 1000  # how fast the terminal's own clock may wander once set (bound grows by this)
NO_BOUND = 0xFFFFFFFF


class Housekeeping:
    def __init__(self, uplink, key):
        self.up = uplink
        self.key = key
        self.config = None  # firmware.config.receiver.ConfigReceiver, made at the first offer
        self._out = []  # (type, body) sequenced messages to send before records: replies, TIME, STATUS
        self._greeted = False
        self.status_at = 0
        self.period_ms = STATUS_MS
        self._bound = NO_BOUND  # clock uncertainty (ms) when it was last set, at self._bound_at
        self._bound_at = 0
        self.time_refused = 0
        self.quarantine = quarantine.Quarantine(uplink.root)

    @property
    def quarantined(self):
        """Records the host refused: kept in quarantine, or counted when the quarantine was full."""
        return self.quarantine.entries() + self.quarantine.overflow

    def new_session(self):
        self._greeted = False
        self._out = []

    # -- messages from the host ------------------------------------------------------------------

    def _config(self):
        if self.config is None:
            gc.collect()  # the config code loads only when a bundle is offered: heap is scarce
            from firmware.config import receiver

            self.config = receiver.ConfigReceiver(self.up.root, self.up.deny, self.key, self.up.on_config)
        return self.config

    def handle(self, msg):
        """A sequenced message from the host; False leaves it unacknowledged (it comes again)."""
        kind = msg["type"]
        if kind not in ("CONFIG_OFFER", "CONFIG_CHUNK"):
            if kind == "TIME":
                self._on_time(msg)
            elif kind == "REFUSED":
                self._on_refused(msg)
            return True
        config = self._config()
        try:
            if kind == "CONFIG_OFFER":
                self._reply_chunk(config.on_offer(msg))
            else:
                ok, reply = config.on_chunk(msg)
                if reply is not None:
                    self._reply_chunk(reply)
                return ok
        except OSError as e:  # flash trouble while staging: the host offers again next session
            print("uplink: config staging failed: %s" % e)
            config.offer = None
        except ValueError as e:  # receiver.Refused
            config.refused += 1
            print("uplink: config refused: %s" % e)
            p = self.up.peer
            if p is not None:
                p.error(link.E_CONFIG_REJECTED, str(e))
        return True

    def _on_refused(self, msg):
        """The host did not store these records: keep each in quarantine (the watermark moves on)."""
        q = self.quarantine
        for e in msg["refused"]:
            seq = e["seq"]
            why = quarantine.REASONS.get(e["reason"], "reason %d" % e["reason"])
            if q.keep(seq, e["reason"], self.up.journal.find(seq)):
                print("uplink: host refused record #%d (%s): kept in quarantine" % (seq, why))
            else:
                print("uplink: host refused record #%d (%s): quarantine full, counted" % (seq, why))

    def _seq_jump(self, first, last, seq):
        """The no-tap record that retires the numbers first..last (SPEC "Transaction record")."""
        return record.encode(self.up.terminal, seq, int(self.up.board.time_s()), record.KIND_SEQ_JUMP, 0, 0, 0, 0,
                             0, record.NO_TOKEN, ((record.EXT_SEQ_JUMP, struct.pack("<II", first, last)),))

    def _floor(self, p):
        """The host holds records up to seq_high (its AUTH): continue the sequence above it, durably."""
        high = p.host_seq_high
        if high is None:
            return
        try:
            jump = self.up.journal.raise_floor(high, self._seq_jump)
        except OSError as e:  # JournalFull: next_seq is raised all the same; the jump record comes later
            print("uplink: host holds records up to #%d; cannot journal the jump: %s" % (high, e))
            return
        if jump is not None:
            print("uplink: host holds records up to #%d; sequence continues at #%d" % (high, jump[2]))

    def _reply_chunk(self, reply):
        kind, version, offset = reply
        self._out.append((link.CONFIG_CHUNK, link.config_chunk(kind, version, offset, b"")))

    def _last_record_time(self):
        recent = self.up.journal.recent(1)
        if not recent:
            return 0
        try:
            return record.decode(recent[-1])["time"]
        except record.RecordError:
            return 0

    def _clock_bound(self, now):
        if self._bound == NO_BOUND:
            return NO_BOUND
        return self._bound + (now - self._bound_at) * DRIFT_PPM // 1000000

    def _on_time(self, msg):
        """Step the clock to the host's, within bounds (SPEC "TIME"): never before 2024 or before the
        newest journal record, never with a worse error bound than the clock already has."""
        now = self.up.now()
        rtt = (now - msg["echo"]) & 0xFFFFFFFF
        if rtt > TIME_RTT_MAX_MS:
            return
        unix_ms = msg["unix_ms"] + rtt // 2
        bound = min(NO_BOUND - 1, rtt // 2 + msg["bound_ms"])
        secs = unix_ms // 1000
        if secs < MIN_EPOCH_S or secs > MAX_EPOCH_S or secs < self._last_record_time():
            self.time_refused += 1
            print("uplink: time %d refused (before 2024, after 2100 or before the newest record)" % secs)
            return
        if bound > self._clock_bound(now):
            return
        step = secs - int(self.up.board.time_s())
        self.up.board.set_time(secs)
        self._bound = bound
        self._bound_at = now
        if step > 1 or step < -1:
            print("uplink: clock set to %d (stepped %d s, bound %d ms)" % (secs, step, bound))

    # -- messages to the host --------------------------------------------------------------------

    def _time_request(self, now):
        synced = self._bound != NO_BOUND
        self._out.append((link.TIME, link.time_sync(now, int(self.up.board.time_s()) * 1000 if synced else 0,
                                                    self._clock_bound(now))))

    def health_bits(self):
        """The STATUS health byte (SPEC "STATUS fields"); the console shows it too."""
        devices = self.up.devices
        health = 0 if devices is None else devices.bits  # scanner and NFC reader (firmware/health.py)
        if not self.up.journal.full:
            health |= link.HEALTH_JOURNAL
        if self._bound != NO_BOUND:
            health |= link.HEALTH_CLOCK
        if self.config is None or self.config.current():
            health |= link.HEALTH_CONFIG
        return health

    def status_body(self, p, now):
        j = self.up.journal
        deny = self.up.deny
        health = self.health_bits()
        t = self.up.transport
        rssi = None if t is None else t.signal
        signal = -128 if rssi is None or rssi > 31 else -113 + 2 * rssi
        return link.status(j.depth(), health, signal, self.up.frame_errors, p.errors["mac"], p.errors["replay"],
                           p.sender.retransmits, now // 1000,
                           (j.free, j.dropped, self.up.reconnects, 0 if deny is None else deny.version,
                            self.quarantined, j.damaged) + eventlog.counts())

    def flush(self, p, now):
        if not self._greeted:
            self._greeted = True
            self._floor(p)
            if p.peer_takes(link.TIME):  # never send a type the host did not announce
                self._time_request(now)
            self.status_at = now - STATUS_MS
        if now - self.status_at >= STATUS_MS and not any(m[0] == link.STATUS for m in self._out):
            self.status_at = now
            if p.peer_takes(link.STATUS):
                self._out.append((link.STATUS, self.status_body(p, now)))
        while self._out and p.can_send():
            mtype, body = self._out.pop(0)
            if p.peer_takes(mtype):
                p.send(mtype, body, self.up.queued)  # tag: every record queued before it was delivered too

