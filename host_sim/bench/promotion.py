"""`python -m host_sim bench promotion --json`: what a county promotion's draw and its budget file cost the
terminal, inside MicroPython (host_sim/device/bench_promotion.py), running the firmware's .mpy files as the
virtual board deploys them.  `draw_ratio` and `spend_ratio` are medians as multiples of the reference (one
HMAC-SHA256 of 1024 bytes), so runs on different machines compare.
"""

import os
import tempfile

from host_sim import micropython
from host_sim.tools import build


def run(args):
    with tempfile.TemporaryDirectory(prefix="zhifu-promo-") as tmp:
        code_dir = os.path.join(tmp, "code")  # the firmware as deployed (.mpy), as on the virtual board
        build.build("virtual", code_dir)
        runtime, out = micropython.run_program("bench_promotion", [args.iterations, tmp], heap=args.heap,
                                               path=[code_dir])
    ref = max(1, out["hmac"]["median_us"])
    out["runtime"] = runtime
    out["draw_ratio"] = round(out["draw"]["median_us"] / ref, 2)
    out["spend_ratio"] = round(out["spend"]["median_us"] / ref, 2)
    out["reference"] = "hmac"
    return out


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation (spend: a tenth)")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
