"""`python -m host_sim bench tapstate [--credentials N] [--taps N] --json`: what the durable per-credential
state (firmware/tapstate.py) costs a tap on MicroPython.

Runs host_sim/device/bench_tapstate.py in the MicroPython unix port on a fresh virtual-board flash image
(littlefs, mounted as the terminal mounts it): the state filled with `--credentials` credentials (default:
the bound, so every bucket is full), then `--taps` taps each timed as one get and one put, with the
littlefs flash operations per tap, the boot-time load and the heap the state holds.
"""

import os
import tempfile

from host_sim import micropython


def add_arguments(parser):
    parser.add_argument("--credentials", type=int, default=3072, help="credentials put first (default 3072)")
    parser.add_argument("--taps", type=int, default=300, help="timed taps (default 300)")
    parser.add_argument("--heap", default="192k", help="MicroPython heap (default 192k, a board's)")


def run(args):
    if args.credentials < 1 or args.taps < 3:
        raise SystemExit("bench tapstate: --credentials must be at least 1, --taps 3")
    with tempfile.TemporaryDirectory(prefix="zhifu-state-") as tmp:
        return micropython.run_program("bench_tapstate", [args.credentials, args.taps], heap=args.heap, board=True,
                                       env={"ZF_FLASH": os.path.join(tmp, "flash.img")}, timeout=None)
