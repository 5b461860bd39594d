"""`python -m host_sim bench emv --json`: one full EMV contactless read, as the terminal does it.

The firmware's PN532 driver and EMV read run as deployed (mpy-cross output of the virtual board, on
the MicroPython unix port) against the PN532 emulator on a pty, whose answers are paced at the
115200 baud the driver sets, like the chip's HSU.  Timed is what the tap costs once the card is in
the field: SELECT PPSE through the last READ RECORD (or GENERATE AC), not polling or release.

Result: {"apdus", "bytes", "median_us"} (+ "p99_us", "reads", "profile", "runtime"): APDUs sent and
APDU bytes both ways in one read, and the median time of a read over `--reads` reads.
`reads(...)` is also what tests use to drive the real driver against the emulator.
"""

import json
import os
import subprocess
import tempfile

from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.tools import build, vboard

# Runs inside MicroPython; prints one JSON line per read and never a card number.
_PROGRAM = """
import asyncio, time, sys, board
from firmware.drivers import pn532 as drv
from firmware import emv
from protocol import pn532

async def main(n):
    d = drv.Pn532(drv.HsuTransport(board.uart("nfc", 115200)))
    await d.begin()
    for i in range(n):
        row = {"ok": False}
        try:
            t = await d.poll()
            if t is None:
                row["error"] = "no target"
            else:
                d.apdus = 0
                d.bytes = 0
                t0 = time.ticks_us()
                card = await emv.read(d.exchange, emv.terminal_data(200, b"\\x01\\x02\\x03\\x04", 1795000000))
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
        print("ROW " + repr(row).replace("'", '"').replace("True", "true").replace("False", "false"))

asyncio.run(main(int(sys.argv[1])))
"""


def _runtime(code_dir):
    out = subprocess.run([vboard.micropython_command(), "-c", "import sys; print(sys.implementation.name, "
                          "'%d.%d.%d' % sys.implementation.version[:3])"], capture_output=True, text=True,
                         env=dict(os.environ, MICROPYPATH=code_dir))
    return out.stdout.strip()


def reads(profile="unionpay-hce", faults=(), n=1, heap="192k", timeout=60, **options):
    """Run `n` reads of `profile` through the firmware driver in MicroPython; (rows, runtime)."""
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = os.path.join(tmp, "code")
        build.build("virtual", code_dir)
        with open(os.path.join(code_dir, "bench_emv_main.py"), "w") as f:
            f.write(_PROGRAM)
        emu = Pn532Emulator()
        try:
            if profile:
                emu.present(profile, faults, **options)
            env = dict(os.environ, MICROPYPATH=code_dir + ":.frozen", ZF_UART_NFC=emu.port,
                       ZF_FLASH=os.path.join(tmp, "flash.img"))
            proc = subprocess.run([vboard.micropython_command(), "-X", "heapsize=" + heap,
                                   os.path.join(code_dir, "bench_emv_main.py"), str(n)],
                                  capture_output=True, text=True, env=env, timeout=timeout)
        finally:
            emu.close()
        if proc.returncode != 0:
            raise RuntimeError("MicroPython EMV read failed:\n" + proc.stdout + proc.stderr)
        rows = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        return rows, _runtime(code_dir)


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(args=None):
    profile = getattr(args, "profile", "unionpay-hce")
    n = getattr(args, "reads", 20)
    rows, runtime = reads(profile, n=n)
    good = [r for r in rows if r["ok"]]
    if not good:
        raise RuntimeError("no successful read: %r" % rows[:3])
    times = [r["us"] for r in good]
    return {"apdus": good[0]["apdus"], "bytes": good[0]["bytes"], "median_us": _percentile(times, 0.5),
            "p99_us": _percentile(times, 0.99), "reads": len(good), "profile": profile, "runtime": runtime}


def add_arguments(parser):
    parser.add_argument("--profile", default="unionpay-hce", help="emulated card or phone (see emulate pn532)")
    parser.add_argument("--reads", type=int, default=20, help="reads to take the median over")
