"""Store-and-forward upload of the journal with link protocol v1 (protocol/SPEC.md) over a transport.

The transport (firmware/transport.py) is the serial line by default, or the cellular modem when
/flash/config/uplink.json says {"link": "modem", ...}; a link that fails is brought up again after a
backoff with jitter.  A protocol.peer.Peer does the protocol (handshake with the device key,
encryption, selective repeat); this task moves bytes and time: it feeds received frames to the Peer,
fills the send window with RECORDS frames read from the journal, writes what the Peer wants sent and
sleeps until the Peer's next deadline, a received byte or a new record.  The journal's watermark
moves only when the host has acknowledged (after its commit) every frame up to a record.  A session
that stops answering is dropped and a new handshake starts; the host de-duplicates by (terminal,
sequence).  In the same session the terminal asks for the time (TIME, stepped only within bounds),
reports its health (STATUS) and takes config bundles (firmware/config.py: the deny list).
"""

import asyncio
import gc
import json
import os
import struct
import time

from firmware import transport
from protocol import frame, link, peer, record, session

WINDOW = 8  # frames in flight: a serial cable needs few; a 300 ms cellular path wants up to 128
MAX_FRAME = 288  # wire bytes: room for one record of the maximum 255 bytes (EMV contactless records are
# large), five EMV-QR records, and still short enough to survive a noisy line
LINK_TIMEOUT_MS = 8000  # frames in flight and nothing heard for this long: new session
RETRY_MS = 5000  # after a refused handshake, or while the device key is missing
IDLE_MS = 1000
STATUS_MS = 5000  # heartbeat period while the session is up
BACKOFF_MIN_MS = 500
BACKOFF_MAX_MS = 30000
KEY_FILE = "keys/device.key"
CONFIG_FILE = "config/uplink.json"
MIN_EPOCH_S = 1704067200  # 2024-01-01: a clock before this was never right
MAX_EPOCH_S = 4102444800  # 2100-01-01
TIME_RTT_MAX_MS = 10000  # an answer older than this says nothing about the time
DRIFT_PPM = 1000  # how fast the terminal's own clock may wander once set (bound grows by this)
NO_BOUND = 0xFFFFFFFF

HEALTH_JOURNAL = 0x01
HEALTH_CLOCK = 0x02
HEALTH_CONFIG = 0x04


def read_key(path):
    try:
        with open(path, "rb") as f:
            key = f.read()
    except OSError:
        return None
    return key if len(key) == session.KEY_SIZE else None


def load_config(root):
    """The uplink config dict; a missing file means the serial line, a damaged one is reported."""
    try:
        with open(root + "/" + CONFIG_FILE) as f:
            cfg = json.load(f)
    except OSError:
        return {}
    except ValueError:
        print("uplink: %s is not JSON; using the serial line" % CONFIG_FILE)
        return {}
    if not isinstance(cfg, dict) or (cfg.get("link") == "modem" and not ("host" in cfg and "port" in cfg)):
        print("uplink: %s needs host and port for a modem; using the serial line" % CONFIG_FILE)
        return {}
    return cfg


class Uplink:
    def __init__(self, board, journal, terminal, root, deny=None, cfg=None):
        self.board = board
        self.journal = journal
        self.terminal = terminal
        self.runtime = board.runtime()
        self.root = root
        self.deny = deny
        self.key_path = root + "/" + KEY_FILE
        self.transport = transport.open_transport(board, load_config(root) if cfg is None else cfg)
        self._frames = frame.FrameReader()
        self.wake = asyncio.Event()  # a record was appended, or bytes arrived
        self.peer = None
        self.config = None  # firmware.config.ConfigReceiver, made at the first offer
        self._key = None
        self._batch = bytearray(link.max_payload(MAX_FRAME))
        self._room = link.max_payload(MAX_FRAME) - link.HEADER_SIZE - session.OVERHEAD
        self._queued = 0  # newest record sequence handed to the sender
        self._out = []  # (type, body) sequenced messages to send before records: replies, TIME, STATUS
        self._t0 = time.ticks_ms()
        self._ms = 0
        self._heard = 0
        self._since = 0
        self._greeted = False
        self._status_at = 0
        self._bound = NO_BOUND  # clock uncertainty (ms) when it was last set, at self._bound_at
        self._bound_at = 0
        self.sessions = 0
        self.reconnects = 0  # link failures and stalled sessions
        self.time_refused = 0

    def _now(self):
        """Milliseconds since start, without ticks wrap-around."""
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._t0)
        self._t0 = t
        return self._ms

    def _connect(self, key, now):
        p = peer.Peer(peer.ROLE_TERMINAL, self.terminal, key, self.runtime, window=WINDOW, max_frame=MAX_FRAME,
                      rx_window=4)
        self.peer = p
        self._queued = self.journal.acked
        self._heard = self._since = now
        self._greeted = False
        self._out = []
        self.sessions += 1
        p.start(now)
        return p

    async def _receive(self):
        buf = bytearray(128)
        while True:
            t = self.transport
            if self.peer is None or not t.connected:
                await asyncio.sleep_ms(50)
                continue
            n = await t.read_into(buf, 500)
            p = self.peer
            if not n or p is None:
                continue
            try:
                for payload in self._frames.feed(memoryview(buf)[:n]):
                    now = self._now()
                    for msg in p.feed(payload, now, self._handle):
                        if msg["type"] == "ERROR":
                            print("uplink: host says error %d: %s" % (msg["code"], msg["text"]))
                    self._heard = now
                    self.wake.set()
            except MemoryError:  # a frame lost to a full heap is retransmitted; the task must live on
                gc.collect()
                print("uplink: out of memory while receiving")

    # -- messages from the host ------------------------------------------------------------------

    def _config(self):
        if self.config is None:
            gc.collect()  # the config code loads only when a bundle is offered: heap is scarce
            from firmware import config

            self.config = config.ConfigReceiver(self.root, self.deny, self._key)
        return self.config

    def _handle(self, msg):
        """A sequenced message from the host; False leaves it unacknowledged (it comes again)."""
        kind = msg["type"]
        if kind not in ("CONFIG_OFFER", "CONFIG_CHUNK"):
            if kind == "TIME":
                self._on_time(msg)
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
        except ValueError as e:  # config.Refused
            config.refused += 1
            print("uplink: config refused: %s" % e)
            p = self.peer
            if p is not None:
                p.error(link.E_CONFIG_REJECTED, str(e))
        return True

    def _reply_chunk(self, reply):
        kind, version, offset = reply
        self._out.append((link.CONFIG_CHUNK, link.config_chunk(kind, version, offset, b"")))

    def _last_record_time(self):
        recent = self.journal.recent(1)
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
        now = self._now()
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
        step = secs - int(self.board.time_s())
        self.board.set_time(secs)
        self._bound = bound
        self._bound_at = now
        if step > 1 or step < -1:
            print("uplink: clock set to %d (stepped %d s, bound %d ms)" % (secs, step, bound))

    # -- messages to the host --------------------------------------------------------------------

    def _time_request(self, now):
        synced = self._bound != NO_BOUND
        self._out.append((link.TIME, link.time_sync(now, int(self.board.time_s()) * 1000 if synced else 0,
                                                    self._clock_bound(now))))

    def status_body(self, p, now):
        j = self.journal
        health = 0
        if not j.full:
            health |= HEALTH_JOURNAL
        if self._bound != NO_BOUND:
            health |= HEALTH_CLOCK
        if self.config is None or self.config.current():
            health |= HEALTH_CONFIG
        rssi = self.transport.signal
        signal = -128 if rssi is None or rssi > 31 else -113 + 2 * rssi
        return link.status(j.depth(), health, signal, self._frames.errors, p.errors["mac"], p.errors["replay"],
                           p.sender.retransmits, now // 1000,
                           (j.free, j.dropped, self.reconnects, self.deny.version if self.deny is not None else 0))

    def _flush(self, p, now):
        if not self._greeted:
            self._greeted = True
            self._time_request(now)
            self._status_at = now - STATUS_MS
        if now - self._status_at >= STATUS_MS and not any(m[0] == link.STATUS for m in self._out):
            self._status_at = now
            self._out.append((link.STATUS, self.status_body(p, now)))
        while self._out and p.can_send():
            mtype, body = self._out.pop(0)
            p.send(mtype, body, self._queued)  # tag: every record queued before it was delivered too

    def _fill(self, p):
        """Queue RECORDS frames of journal records not yet handed to the sender, while the window allows."""
        while p.can_send() and self.journal.next_seq - 1 > self._queued:
            in_flight = self._queued - self.journal.acked
            recs = self.journal.pending(in_flight + 8, 1 << 30)
            batch = []
            for rec in recs:
                if record.seq_of(rec) <= self._queued:
                    continue
                batch.append(rec)
                if link.records_size(batch, self.terminal) > self._room:
                    batch.pop()
                    break
            if not batch:
                return
            n = link.records_into(self._batch, 0, batch, self.terminal)
            last = record.seq_of(batch[-1])
            p.send(link.RECORDS, memoryview(self._batch)[:n], last)
            self._queued = last

    def _stalled(self, p, now):
        if p.state == peer.IDLE:  # the host refused us (unknown terminal, bad key)
            return now - self._since >= RETRY_MS
        if p.up():
            return p.sender.in_flight() > 0 and now - self._heard >= LINK_TIMEOUT_MS
        return now - self._since >= LINK_TIMEOUT_MS

    async def _link_up(self, backoff):
        """Connect the transport, waiting backoff + jitter after a failure; returns the next backoff."""
        if await self.transport.connect():
            return BACKOFF_MIN_MS
        self.reconnects += 1
        print("uplink: link down (%s), retrying" % (self.transport.last_error or "no connection"))
        await asyncio.sleep_ms(backoff + struct.unpack("<H", os.urandom(2))[0] * backoff // 65536)
        return min(backoff * 2, BACKOFF_MAX_MS)

    async def run(self):
        key = read_key(self.key_path)
        while key is None:
            print("uplink: no device key in %s: provision this terminal" % self.key_path)
            await asyncio.sleep_ms(RETRY_MS)
            key = read_key(self.key_path)
        self._key = key
        asyncio.create_task(self._receive())
        backoff = BACKOFF_MIN_MS
        p = None
        while True:
            try:
                t = self.transport
                if not t.connected:
                    self.peer = p = None
                    backoff = await self._link_up(backoff)
                    continue
                now = self._now()
                if p is None:
                    p = self._connect(key, now)
                elif self._stalled(p, now):
                    if p.up():
                        self.reconnects += 1
                        await t.close()  # a modem socket that went quiet: open a fresh one
                        if not t.connected:
                            continue
                    p = self._connect(key, now)
                if p.up():
                    tag = p.sender.delivered_tag
                    if tag > self.journal.acked:
                        self.journal.ack(tag)  # the host committed every record up to tag
                    self._flush(p, now)
                    self._fill(p)
                payload = p.poll(now)
                if payload is not None:
                    await t.write(link.wire(payload))  # False: the link failed, `connected` says so above
                    continue
                d = p.deadline(now)
                wait = IDLE_MS if d is None else max(5, min(d, IDLE_MS))
                if p.up():
                    wait = min(wait, max(5, STATUS_MS - (now - self._status_at)))
                self.wake.clear()
                try:
                    await asyncio.wait_for_ms(self.wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            except MemoryError:  # a full heap costs a retry, never the uplink task
                gc.collect()
                print("uplink: out of memory, retrying")
                await asyncio.sleep_ms(100)
