"""`python -m host_sim bench ridecode --json`: what checking one ride code costs the terminal.

Runs host_sim/device/bench_ridecode.py in the MicroPython unix port over protocol/ridecode.py with the
test chains (host_sim/tools/ridecodes.py): per algorithm (sm2, p256) the first code of an issuer (root ->
issuer certificate verified and the issuer key's comb table built, plus the code's own checks) and, timed
`--iterations` times, a code once its issuer certificate is remembered (one prepared-key verify for the
user certificate, one plain verify for the code, decode and freshness).  `*_esp32_ms` projects the median
with host_sim/bench/ecc.py ESP32_FACTOR (an assumption, not a board measurement).
"""

import os
import tempfile
import time

from host_sim import micropython
from host_sim.bench.ecc import ESP32_FACTOR, RIDE_CODE_BUDGET_MS
from host_sim.tools import ridecodes
from protocol import ridecode


def run(args):
    now = int(time.time())
    rows = [str(now)]
    for name, alg in (("sm2", ridecode.ALG_SM2), ("p256", ridecode.ALG_P256)):
        root = ridecodes.ROOT_IDS[alg]
        key = ridecodes.root_key(alg, root).public.hex()
        codes = [ridecodes.issue(alg, now, user_id=b"BENCH%03d" % i, counter=i) for i in (1, 2)]
        rows.append(" ".join([name, str(root), name, key] + codes))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs")
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        result = micropython.run_program("bench_ridecode", [path, args.iterations], heap=args.heap)
    for name in ("sm2", "p256"):
        result[name + "_code_esp32_ms"] = round(result[name + "_code"]["median_us"] * ESP32_FACTOR / 1000, 1)
        result[name + "_code_esp32_ms_from_min"] = round(result[name + "_code"]["min_us"] * ESP32_FACTOR / 1000, 1)
    result["esp32_factor_assumed"] = ESP32_FACTOR
    result["targets"] = {"code_esp32_ms": RIDE_CODE_BUDGET_MS}
    return result


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=50, help="timed checks of a code per algorithm")
    parser.add_argument("--heap", default="192k", help="MicroPython heap")
