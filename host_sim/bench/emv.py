"""`python -m host_sim bench emv --json`: one full EMV contactless read, as the terminal does it.

The firmware's PN532 driver and EMV read run as deployed (mpy-cross output of the virtual board, on
the MicroPython unix port, driven by host_sim/device/bench_emv.py) against the PN532 emulator on a
pty, whose answers are paced at the 115200 baud the driver sets, like the chip's HSU.  Timed is what
the tap costs once the card is in the field: SELECT PPSE through the last READ RECORD (or GENERATE
AC), not polling or release.

Result: {"apdus", "bytes", "median_us"} (+ "p99_us", "reads", "profile", "runtime"): APDUs sent and
APDU bytes both ways in one read, and the median time of a read over `--reads` reads.
`reads(...)` is also what tests use to drive the real driver against the emulator.
"""

import os
import tempfile

from host_sim import micropython
from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.tools import build


def reads(profile="unionpay-hce", faults=(), n=1, heap="192k", timeout=60, **options):
    """Run `n` reads of `profile` through the firmware driver in MicroPython; (rows, runtime)."""
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = os.path.join(tmp, "code")
        build.build("virtual", code_dir)
        emu = Pn532Emulator()
        try:
            if profile:
                emu.present(profile, faults, **options)
            env = {"ZF_UART_NFC": emu.port, "ZF_FLASH": os.path.join(tmp, "flash.img")}
            result = micropython.run_program("bench_emv", [n], heap=heap, env=env, path=[code_dir], timeout=timeout)
        finally:
            emu.close()
        return result["rows"], result["runtime"]


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
