"""Store-and-forward upload of the journal over the uplink UART (first slice: serial to a host).

Sends HELLO at start and as a heartbeat, then unacknowledged records in batches; only the host's ACK
(sent after it committed them) advances the journal's watermark.  A batch without an ACK in time is
sent again after a backoff with jitter; the host de-duplicates by (terminal, sequence).
"""

import asyncio
import os

from protocol import frame, messages

BATCH = 6
ACK_TIMEOUT_MS = 1500
HEARTBEAT_MS = 5000
BACKOFF_MIN_MS = 250
BACKOFF_MAX_MS = 8000


class Uplink:
    def __init__(self, uart, journal, terminal, runtime):
        self.journal = journal
        self.terminal = terminal
        self.runtime = runtime
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._frames = frame.FrameReader()
        self._acked = asyncio.Event()
        self.wake = asyncio.Event()  # set when a record was appended
        self.sent_batches = 0
        self.retries = 0

    async def _send(self, payload):
        self._writer.write(frame.encode(payload))
        await self._writer.drain()

    async def _receive(self):
        buf = bytearray(64)
        while True:
            n = await self._reader.readinto(buf)
            if not n:
                await asyncio.sleep_ms(10)
                continue
            for payload in self._frames.feed(memoryview(buf)[:n]):
                try:
                    kind, body = messages.parse(payload)
                except messages.MessageError:
                    continue
                if kind == messages.ACK:
                    self.journal.ack(body)
                    self._acked.set()

    async def run(self):
        asyncio.create_task(self._receive())
        hello = messages.hello(self.terminal, self.runtime)
        await self._send(hello)
        backoff = BACKOFF_MIN_MS
        room = frame.MAX_PAYLOAD - 2 - 2 * BATCH
        while True:
            batch = self.journal.pending(BATCH, room)
            if not batch:
                self.wake.clear()
                try:
                    await asyncio.wait_for_ms(self.wake.wait(), HEARTBEAT_MS)
                except asyncio.TimeoutError:
                    await self._send(hello)
                continue
            self._acked.clear()
            await self._send(messages.records(batch))
            self.sent_batches += 1
            try:
                await asyncio.wait_for_ms(self._acked.wait(), ACK_TIMEOUT_MS)
                backoff = BACKOFF_MIN_MS
            except asyncio.TimeoutError:
                self.retries += 1
                await asyncio.sleep_ms(backoff + os.urandom(1)[0] * backoff // 256)
                backoff = min(backoff * 2, BACKOFF_MAX_MS)
