"""The NFC tap task: poll the PN532 for a card or phone, read it (EMV), hand the decision to the terminal.

One card in the field is one tap: after a read the task waits until the target has left the field
(polls find nothing) before it reads again, so a phone held on the reader is not charged twice even
though every read gives a new transaction counter.  Every failure of the chip or the card becomes a
declined tap with a reason, never an exception out of this task.
"""

import asyncio
import os
import sys

from firmware import identity
from firmware.drivers import pn532 as driver
from protocol import pn532, record

POLL_MS = 200
BEGIN_RETRIES = 5


class NfcTask:
    def __init__(self, terminal, dev, root):
        self.terminal = terminal
        self.dev = dev
        self.key = identity.data_key(root)

    async def _begin(self):
        delay = 1000
        for _ in range(BEGIN_RETRIES):
            try:
                await self.dev.begin()
                print("nfc: PN532 ready")
                return True
            except pn532.Pn532Error as e:
                print("nfc: PN532 not answering (%s)" % e)
            await asyncio.sleep_ms(delay)
            delay *= 2
        print("nfc: no PN532, contactless off until restart")
        return False

    async def run(self):
        if not await self._begin():
            return
        # The EMV reader (~10 KB of bytecode) is loaded only once a PN532 answered: a terminal
        # without a reader keeps that heap for taps.
        from firmware import emv
        while True:
            try:
                target = await self.dev.poll()
                if target is not None:
                    await self._tap(emv)
                    await self._wait_removed()
            except pn532.Pn532Error as e:
                print("nfc: " + str(e))
            except Exception as e:  # never let one bad tap stop the task
                sys.print_exception(e)
            await asyncio.sleep_ms(POLL_MS)

    async def _tap(self, emv):
        t = self.terminal
        try:
            data = emv.terminal_data(t.decider.fare, os.urandom(4), int(t.board.time_s()))
            card = await emv.read(self.dev.exchange, data)
        except driver.TargetGone:
            t.decline(record.REASON_CARD_READ, "card removed too early")
            return
        except (emv.EmvError, pn532.Pn532Error) as e:
            reason = record.REASON_CARD_UNSUPPORTED if "no supported application" in str(e) else record.REASON_CARD_READ
            t.decline(reason, str(e))
            return
        finally:
            await self.dev.release()
        t.apply(t.decider.decide_emv(card, self.key, os.urandom(12)))

    async def _wait_removed(self):
        while True:
            await asyncio.sleep_ms(POLL_MS)
            if await self.dev.poll() is None:
                return
            await self.dev.release()
