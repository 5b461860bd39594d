"""Store-and-forward upload of the journal over the uplink UART with link protocol v1 (protocol/SPEC.md).

A protocol.peer.Peer does the protocol (handshake with the device key, encryption, selective repeat);
this task only moves bytes and time: it feeds received frames to the Peer, fills the send window with
RECORDS frames read from the journal, writes what the Peer wants sent and sleeps until the Peer's next
deadline, a received byte or a new record.  The journal's watermark moves only when the host has
acknowledged (after its commit) every frame up to a record.  A session that stops answering is
dropped and a new handshake starts; the host de-duplicates by (terminal, sequence).
"""

import asyncio
import time

from protocol import frame, link, peer, record, session

WINDOW = 8  # frames in flight: a serial cable needs few; a 300 ms cellular path wants up to 128
MAX_FRAME = 288  # wire bytes: room for one record of the maximum 255 bytes (EMV contactless records are
# large), five EMV-QR records, and still short enough to survive a noisy line
LINK_TIMEOUT_MS = 8000  # frames in flight and nothing heard for this long: new session
RETRY_MS = 5000  # after a refused handshake, or while the device key is missing
IDLE_MS = 1000
KEY_FILE = "keys/device.key"


def read_key(path):
    try:
        with open(path, "rb") as f:
            key = f.read()
    except OSError:
        return None
    return key if len(key) == session.KEY_SIZE else None


class Uplink:
    def __init__(self, uart, journal, terminal, runtime, root):
        self.journal = journal
        self.terminal = terminal
        self.runtime = runtime
        self.key_path = root + "/" + KEY_FILE
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._frames = frame.FrameReader()
        self.wake = asyncio.Event()  # a record was appended, or bytes arrived
        self.peer = None
        self._batch = bytearray(link.max_payload(MAX_FRAME))
        self._room = link.max_payload(MAX_FRAME) - link.HEADER_SIZE - session.OVERHEAD
        self._queued = 0  # newest record sequence handed to the sender
        self._t0 = time.ticks_ms()
        self._ms = 0
        self._heard = 0
        self._since = 0
        self.sessions = 0

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
        self.sessions += 1
        p.start(now)
        return p

    async def _receive(self):
        buf = bytearray(64)
        while True:
            n = await self._reader.readinto(buf)
            if not n:
                await asyncio.sleep_ms(10)
                continue
            p = self.peer
            if p is None:
                continue
            for payload in self._frames.feed(memoryview(buf)[:n]):
                now = self._now()
                for msg in p.feed(payload, now):
                    if msg["type"] == "ERROR":
                        print("uplink: host says error %d: %s" % (msg["code"], msg["text"]))
                self._heard = now
                self.wake.set()

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

    async def run(self):
        key = read_key(self.key_path)
        while key is None:
            print("uplink: no device key in %s: provision this terminal" % self.key_path)
            await asyncio.sleep_ms(RETRY_MS)
            key = read_key(self.key_path)
        asyncio.create_task(self._receive())
        p = self._connect(key, self._now())
        while True:
            now = self._now()
            if self._stalled(p, now):
                p = self._connect(key, now)
            if p.up():
                tag = p.sender.delivered_tag
                if tag > self.journal.acked:
                    self.journal.ack(tag)  # the host committed every record up to tag
                self._fill(p)
            payload = p.poll(now)
            if payload is not None:
                self._writer.write(link.wire(payload))
                await self._writer.drain()
                continue
            d = p.deadline(now)
            wait = IDLE_MS if d is None else max(5, min(d, IDLE_MS))
            self.wake.clear()
            try:
                await asyncio.wait_for_ms(self.wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
