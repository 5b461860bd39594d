"""`python -m host_sim bench promotion --json`: what a county promotion's draw, its budget file and the
bilingual screen cost the terminal, inside MicroPython (host_sim/device/bench_promotion.py), running the
firmware's .mpy files as the virtual board deploys them.

The glyph table is the one the build makes from GNU Unifont (host_sim/tools/glyphs.py); without Unifont
the screen is not timed.  `draw_ratio` and `screen_ratio` are medians as multiples of the reference (one
HMAC-SHA256 of 1024 bytes), so runs on different machines compare.
"""

import os
import tempfile

from host_sim import micropython
from host_sim.tools import build, glyphs


def run(args):
    with tempfile.TemporaryDirectory(prefix="zhifu-promo-") as tmp:
        table_file = "-"
        made = glyphs.build_table()
        if made is not None:
            table_file = os.path.join(tmp, "glyphs.bin")
            with open(table_file, "wb") as f:
                f.write(made[0])
        code_dir = os.path.join(tmp, "code")  # the firmware as deployed (.mpy), as on the virtual board
        build.build("virtual", code_dir)
        runtime, out = micropython.run_program("bench_promotion", [args.iterations, tmp, table_file], heap=args.heap,
                                               path=[code_dir])
    ref = max(1, out["hmac"]["median_us"])
    out["runtime"] = runtime
    out["draw_ratio"] = round(out["draw"]["median_us"] / ref, 2)
    if "screen" in out:
        out["screen_ratio"] = round(out["screen"]["median_us"] / ref, 2)
    else:
        out["screen"] = None
        out["screen_note"] = "GNU Unifont not installed (Debian package unifont): no glyph table to draw"
    out["reference"] = "hmac"
    return out


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation (spend: a tenth)")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
