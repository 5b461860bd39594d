"""Are the scanner and the NFC reader there? The peripheral bits of the STATUS health byte.

A bit is set when its device answers and cleared after `limit` failures in a row, so one lost answer
on a noisy line does not raise an alarm at the collector, but a module that went silent does.  The
rules per device are in protocol/SPEC.md ("STATUS fields"): the QR scanner answers a probe at boot and
a re-probe every SCANNER_PROBE_MS (a code it sends counts as an answer too); the PN532 answers
GetFirmwareVersion/SAMConfiguration at start and every poll after (firmware/nfc.py).  A board
without an NFC reader never sets its bit.
"""

import asyncio

from micropython import const

from protocol import link

SCANNER_PROBE_MS = const(30000)
SCANNER_MISSES = const(2)  # re-probes in a row without an answer or a code
NFC_FAILURES = const(3)  # PN532 polls in a row that failed (each already retried by the driver)


class Health:
    def __init__(self):
        self.bits = 0
        self._fails = {}  # bit -> failures in a row

    def ok(self, bit):
        self._fails[bit] = 0
        self.bits |= bit

    def failed(self, bit, limit):
        """Count one failure; True when this one cleared the bit (the device was ok until now)."""
        n = min(self._fails.get(bit, 0) + 1, limit)
        self._fails[bit] = n
        if n < limit or not self.bits & bit:
            return False
        self.bits &= ~bit
        return True


async def watch_scanner(scanner, health, period_ms=SCANNER_PROBE_MS, misses=SCANNER_MISSES):
    """Re-probe the scanner every period; no answer and no code for `misses` periods clears its bit.

    The probe's answer is dropped by the scanner's line reader (it only counts it), so this runs
    beside Terminal.run's read loop; no probe goes out while a code is half received."""
    bit = link.HEALTH_SCANNER
    while True:
        heard = scanner.heard
        if not scanner.busy():
            scanner.probe()
        await asyncio.sleep_ms(period_ms)
        if scanner.heard != heard:
            if not health.bits & bit:
                print("scanner: answering")
            health.ok(bit)
        elif not scanner.busy() and health.failed(bit, misses):
            print("scanner: stopped answering")
