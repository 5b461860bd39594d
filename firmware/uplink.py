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
reports its health (STATUS) and takes config bundles (firmware/config/receiver.py: the deny list).
"""

import asyncio
import gc
import json
import os
import struct
import time

from protocol import cobs, frame, link, peer, record, session

WINDOW = 8  # frames in flight: a serial cable needs few; a 300 ms cellular path wants up to 128
MAX_FRAME = 288  # wire bytes: room for one record of the maximum 255 bytes (EMV contactless records are
# large), five EMV-QR records, and still short enough to survive a noisy line
LINK_TIMEOUT_MS = 8000  # frames waiting and nothing heard for this long: new session
RETRY_MS = 5000  # after a refused handshake, or while the device key is missing
IDLE_MS = 1000
BACKOFF_MIN_MS = 500
BACKOFF_MAX_MS = 30000
KEY_FILE = "keys/device.key"
CONFIG_FILE = "config/uplink.json"
ONLINE_DEADLINE_MIN_MS = 200  # the range of its "online_deadline_ms" (app.py online_config; protocol/uplink_config.py)
ONLINE_DEADLINE_MAX_MS = 10000


def read_key(path):
    """The device key at `path` (wrapped under the board secret, firmware/keystore.py), or None."""
    from firmware import keystore

    try:
        with open(path, "rb") as f:
            key = keystore.unwrap(KEY_FILE, f.read())
    except OSError:
        return None
    return key if key is not None and len(key) == session.KEY_SIZE else None


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
    def __init__(self, board, journal, terminal, root, deny=None, cfg=None, devices=None, on_config=None):
        self.board = board
        self.journal = journal
        self.terminal = terminal
        self.runtime = board.runtime()
        self.root = root
        self.deny = deny
        self.on_config = on_config  # (kind, content): a fleet bundle was activated (firmware/config/receiver.py)
        self.key_path = root + "/" + KEY_FILE
        self._cfg = cfg
        self.transport = None  # opened by run(): after boot, so the NFC stack loads into an unfragmented heap
        self._frames = frame.FrameReader()
        self.wake = asyncio.Event()  # a record was appended, or bytes arrived
        self.peer = None  # the Peer while a transport is connected, else None
        self._peer = None  # the one Peer and Sender of this uplink, reset per session
        self.house = None  # firmware.housekeeping.Housekeeping: TIME, STATUS, config bundles
        self.devices = devices  # firmware.health.Health: the scanner and NFC bits of STATUS
        self._batch = bytearray(link.max_payload(MAX_FRAME))
        self._room = link.max_payload(MAX_FRAME) - link.HEADER_SIZE - session.OVERHEAD
        self._wire = bytearray(2 + cobs.max_encoded_len(frame.MAX_PAYLOAD + 4))  # the frame being written
        self._scratch = bytearray(frame.MAX_PAYLOAD + 4)
        self._payload = bytearray(frame.MAX_PAYLOAD)  # the sealed payload of the frame being written
        self._recs = bytearray(self._room)  # the records of the next RECORDS frame, read by the journal cursor
        self.queued = 0  # newest record sequence handed to the sender (housekeeping tags its messages with it)
        self._t0 = time.ticks_ms()
        self._ms = 0
        self._heard = 0
        self._since = 0
        self.sessions = 0
        self.reconnects = 0  # link failures and stalled sessions
        self._online_out = None  # ONLINE_REQUEST body waiting for a window slot (sent ahead of RECORDS)
        self._online_id = None  # request id whose ONLINE_RESULT is awaited
        self._online_result = None
        self._online_done = asyncio.Event()

    @property
    def frame_errors(self):
        """Frames dropped for a bad CRC or framing since boot (STATUS crc_errors)."""
        return self._frames.errors

    def now(self):
        """Milliseconds since start, without ticks wrap-around."""
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._t0)
        self._t0 = t
        return self._ms

    def _connect(self, key, now):
        """A new session on the one Peer of this uplink (allocated at the first; reset after)."""
        p = self._peer
        if p is None:
            p = self._peer = peer.Peer(peer.ROLE_TERMINAL, self.terminal, key, self.runtime, window=WINDOW,
                                       max_frame=MAX_FRAME, rx_window=4)
        self.peer = p
        self.queued = self.journal.acked
        self._heard = self._since = now
        if self.house is not None:
            self.house.new_session()
        self.sessions += 1
        p.reset(now)
        return p

    async def _receive(self):
        buf = bytearray(128)
        while True:
            t = self.transport
            h = self.house
            if t is None or h is None or self.peer is None or not t.connected:
                await asyncio.sleep_ms(50)
                continue
            n = await t.read_into(buf, 500)
            p = self.peer
            if not n or p is None:
                continue
            try:
                for payload in self._frames.feed(memoryview(buf)[:n]):
                    now = self.now()
                    for msg in p.feed(payload, now, h.handle):
                        if msg["type"] == "ONLINE_RESULT":
                            self._on_online_result(msg)
                        elif msg["type"] == "ERROR":
                            print("uplink: host says error %d: %s" % (msg["code"], msg["text"]))
                    self._heard = now
                    self.wake.set()
            except MemoryError:  # a frame lost to a full heap is retransmitted; the task must live on
                gc.collect()
                print("uplink: out of memory while receiving")

    # -- online authorisation of payment codes (SPEC "Payment codes") -----------------------------

    def online_ready(self):
        """True when an ONLINE_REQUEST can go out now: the session is up with a host that announced
        CAP_ONLINE."""
        p = self.peer
        t = self.transport
        return p is not None and t is not None and t.connected and p.peer_has(link.CAP_ONLINE)

    async def authorise(self, request_id, family, amount, currency, deadline_ms, code):
        """Send ONLINE_REQUEST ahead of any queued upload and wait up to deadline_ms for its
        ONLINE_RESULT (a link.decode dict); None when none came in time."""
        self._online_id = request_id
        self._online_result = None
        self._online_done.clear()
        self._online_out = link.online_request(request_id, family, amount, currency, deadline_ms, code)
        self.wake.set()
        try:
            await asyncio.wait_for_ms(self._online_done.wait(), deadline_ms)
        except asyncio.TimeoutError:
            pass
        self._online_out = self._online_id = None  # a request not sent by now is never sent
        return self._online_result

    def _on_online_result(self, msg):
        if msg["request_id"] != self._online_id:
            print("uplink: late ONLINE_RESULT for request %d ignored" % msg["request_id"])
            return
        self._online_result = msg
        self._online_done.set()

    def _send_online(self, p):
        body = self._online_out
        if body is not None and p.can_send() and p.peer_has(link.CAP_ONLINE):
            p.send(link.ONLINE_REQUEST, body, self.queued)
            self._online_out = None

    def _fill(self, p):
        """Queue RECORDS frames of journal records not yet handed to the sender, while the window allows;
        one slot stays free for an ONLINE_REQUEST."""
        if not p.peer_takes(link.RECORDS):  # a host that takes no records gets none (SPEC "Capabilities")
            return
        spare = 1 if p.sender.window > 1 else 0
        while p.can_send() and p.sender.in_flight() + spare < p.sender.window and \
                self.journal.next_seq - 1 > self.queued:
            batch = self.journal.read_after(self.queued, self._recs, self._room, self.terminal)
            if not batch:
                return
            n = link.records_into(self._batch, 0, batch, self.terminal)
            last = record.seq_of(batch[-1])
            p.send(link.RECORDS, memoryview(self._batch)[:n], last)
            self.queued = last

    def _stalled(self, p, now):
        """True when this session must be given up for a new one.  An up session is stalled when frames
        have waited LINK_TIMEOUT_MS with nothing heard; while nothing waits the link is quiet, not silent,
        so the timeout counts from the first frame sent after an idle spell, however long that was."""
        if p.state == peer.IDLE:  # the host refused us (unknown terminal, bad key), or lost our session
            return p.renew or now - self._since >= RETRY_MS
        if p.up():
            if not p.sender.in_flight():
                self._heard = now
                return False
            return now - self._heard >= LINK_TIMEOUT_MS
        return now - self._since >= LINK_TIMEOUT_MS

    async def _link_up(self, t, backoff):
        """Connect the transport, waiting backoff + jitter after a failure; returns the next backoff."""
        if await t.connect():
            return BACKOFF_MIN_MS
        self.reconnects += 1
        print("uplink: link down (%s), retrying" % (t.last_error or "no connection"))
        await asyncio.sleep_ms(backoff + struct.unpack("<H", os.urandom(2))[0] * backoff // 65536)
        return min(backoff * 2, BACKOFF_MAX_MS)

    async def run(self):
        from firmware import transport

        t = self.transport = transport.open_transport(self.board, load_config(self.root) if self._cfg is None
                                                      else self._cfg)
        key = read_key(self.key_path)
        while key is None:
            print("uplink: no device key in %s: provision this terminal" % self.key_path)
            await asyncio.sleep_ms(RETRY_MS)
            key = read_key(self.key_path)
        from firmware import housekeeping

        h = self.house = housekeeping.Housekeeping(self, key)
        asyncio.create_task(self._receive())
        backoff = BACKOFF_MIN_MS
        p = None
        while True:
            try:
                if not t.connected:
                    self.peer = p = None
                    backoff = await self._link_up(t, backoff)
                    continue
                now = self.now()
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
                    self._send_online(p)
                    h.flush(p, now)
                    self._fill(p)
                n = p.poll_into(now, self._payload)  # built and sealed in place
                if n:
                    n = frame.wire_into(memoryview(self._payload)[:n], self._wire, self._scratch)
                    await t.write(memoryview(self._wire)[:n])  # False: the link failed, `connected` says so
                    continue
                d = p.deadline(now)
                wait = IDLE_MS if d is None else max(5, min(d, IDLE_MS))
                if p.up():
                    wait = min(wait, max(5, h.period_ms - (now - h.status_at)))
                self.wake.clear()
                try:
                    await asyncio.wait_for_ms(self.wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            except MemoryError:  # a full heap costs a retry, never the uplink task
                gc.collect()
                print("uplink: out of memory, retrying")
                await asyncio.sleep_ms(100)
