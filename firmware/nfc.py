"""The NFC tap task: poll the PN532 for a card or phone, read it (EMV), hand the decision to the terminal.

One card in the field is one tap: after a read the task waits until the target has left the field
(polls find nothing) before it reads again, so a phone held on the reader is not charged twice even
though every read gives a new transaction counter.  Every failure of the chip or the card becomes a
declined tap with a reason, never an exception out of this task.  The chip's own health is the NFC
bit of STATUS (firmware/health.py): set when it starts and at every good poll, cleared after
NFC_FAILURES failed polls in a row, after which the task starts the chip again.
"""

import asyncio
import os
import sys

from firmware import health
from firmware.drivers import pn532 as driver
from protocol import link, pn532

POLL_MS = 200
BEGIN_RETRIES = 5  # attempts reported on the console; after them the task keeps trying quietly
BEGIN_MAX_MS = 30000


class NfcTask:
    def __init__(self, taps, dev, health_bits):
        self.taps = taps  # app.CardTaps: the amount, and a read or a failed read decided and carried out
        self.dev = dev
        self.health = health_bits  # the NFC bit of STATUS (firmware/health.py)
        self.lock = asyncio.Lock()  # held for each poll and tap: the console's selftest asks the chip between them

    async def _begin(self):
        """Start the chip, trying again with a growing pause until it answers."""
        delay = 1000
        tries = 0
        while True:
            try:
                await self.dev.begin()
                self.health.ok(link.HEALTH_NFC)
                print("nfc: PN532 ready")
                return
            except pn532.Pn532Error as e:
                tries += 1
                if tries <= BEGIN_RETRIES:
                    print("nfc: PN532 not answering (%s)" % e)
                if tries == BEGIN_RETRIES:
                    print("nfc: no PN532, contactless off; trying again every %d s" % (BEGIN_MAX_MS // 1000))
            await asyncio.sleep_ms(delay)
            delay = min(delay * 2, BEGIN_MAX_MS)

    async def run(self):
        emv = None
        while True:
            await self._begin()
            if emv is None:
                # The EMV reader (~10 KB of bytecode) is loaded only once a PN532 answered: a terminal
                # without a reader keeps that heap for taps.
                from firmware import emv
            await self._serve(emv)
            print("nfc: PN532 stopped answering, starting it again")

    async def _serve(self, emv):
        """Poll and read taps until NFC_FAILURES polls in a row failed."""
        while True:
            try:
                async with self.lock:
                    target = await self.dev.poll()
                    self.health.ok(link.HEALTH_NFC)
                    if target is not None:
                        await self._tap(emv)
                if target is not None:
                    await self._wait_removed()
            except pn532.Pn532Error as e:
                print("nfc: " + str(e))
                if self.health.failed(link.HEALTH_NFC, health.NFC_FAILURES):
                    return
            except Exception as e:  # never let one bad tap stop the task
                sys.print_exception(e)
            await asyncio.sleep_ms(POLL_MS)

    async def _tap(self, emv):
        """Read the card; the decision (firmware/decision.py) decides the read or its failure, by code."""
        taps = self.taps
        try:
            data = emv.terminal_data(taps.amount(), os.urandom(4), taps.now())
            card = await emv.read(self.dev.exchange, data)
        except driver.TargetGone:
            taps.failed(emv.CARD_REMOVED, "card removed too early")
            return
        except emv.EmvError as e:
            taps.failed(e.code, str(e))
            return
        except pn532.Pn532Error as e:
            taps.failed(emv.READER_FAILED, str(e))
            return
        finally:
            await self.dev.release()
        taps.read(card)

    async def _wait_removed(self):
        while True:
            await asyncio.sleep_ms(POLL_MS)
            async with self.lock:
                if await self.dev.poll() is None:
                    return
                await self.dev.release()
