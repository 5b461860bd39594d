"""`bench emv` inside MicroPython: EMV contactless reads through the firmware's PN532 driver on the
board's "nfc" UART, one row per read (never a card number).

argv: reads."""

import asyncio
import sys
import time

import board
from firmware import emv
from firmware.drivers import pn532 as drv
from host_sim.device import results
from protocol import pn532

UNPREDICTABLE = b"\x01\x02\x03\x04"
WHEN = 1795000000


async def read_once(d):
    """One read of the card in the field: SELECT PPSE to the last record, timed; a row."""
    row = {}
    row["ok"] = False
    try:
        t = await d.poll()
        if t is None:
            row["error"] = "no target"
        else:
            d.apdus = 0
            d.bytes = 0
            t0 = time.ticks_us()
            card = await emv.read(d.exchange, emv.terminal_data(200, UNPREDICTABLE, WHEN))
            row["us"] = time.ticks_diff(time.ticks_us(), t0)
            row["ok"] = True
            row["aid"] = card["aid"].hex()
            row["cid"] = card["cid"].hex()
            row["pan_last4"] = card["pan"][-4:]
    except (pn532.Pn532Error, emv.EmvError) as e:
        row["error"] = "%s: %s" % (type(e).__name__, e)
    row["apdus"] = d.apdus
    row["bytes"] = d.bytes
    await d.release()
    return row


async def main(n):
    d = drv.Pn532(drv.HsuTransport(board.uart("nfc", 115200)))
    await d.begin()
    rows = []
    for _ in range(n):
        rows.append(await read_once(d))
    results.report({"rows": rows, "runtime": results.runtime_name()})


asyncio.run(main(int(sys.argv[1])))
