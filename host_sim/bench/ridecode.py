"""`python -m host_sim bench ridecode --json`: what checking one ride code costs the terminal.

Runs host_sim/device/bench_ridecode.py in the MicroPython unix port over protocol/ridecode.py with the
test chains (host_sim/tools/ridecodes.py): per algorithm (sm2, p256) the first code of an issuer (root ->
issuer certificate verified, three plain verifies, plus the code's own checks), the issuer key's comb table
built (what the terminal does when idle after that code), then timed: a new rider's code once its issuer
certificate is remembered ("*_code": one prepared-key verify for the user certificate, one plain verify for
the code, decode and freshness; up to 20 distinct riders), and a returning rider's code `--iterations` times
("*_returning_code": its user certificate already verified, so only the code's own signature).
`*_esp32_ms` projects the median with host_sim/bench/ecc.py ESP32_FACTOR (an assumption, not a board
measurement).
"""

import os
import tempfile
import time

from host_sim import micropython
from host_sim.bench.ecc import ESP32_FACTOR, RIDE_CODE_BUDGET_MS
from host_sim.tools import ridecodes
from protocol import ridecode

NEW_RIDERS = 20  # distinct riders' codes timed (each a user certificate the terminal has not seen)


def run(args):
    now = int(time.time())
    rows = [str(now)]
    for name, alg in (("sm2", ridecode.ALG_SM2), ("p256", ridecode.ALG_P256)):
        root = ridecodes.ROOT_IDS[alg]
        key = ridecodes.root_key(alg, root).public.hex()
        first = ridecodes.issue(alg, now, user_id=b"BENCH000", counter=1)
        returning = ridecodes.issue(alg, now, user_id=b"BENCH000", counter=2)
        riders = [ridecodes.issue(alg, now, user_id=b"RIDER%03d" % i) for i in range(min(args.iterations, NEW_RIDERS))]
        codes = [first, returning] + riders
        rows.append(" ".join([name, str(root), name, key] + codes))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs")
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        result = micropython.run_program("bench_ridecode", [path, args.iterations], heap=args.heap)
    for name in ("sm2", "p256"):
        result[name + "_code_esp32_ms"] = round(result[name + "_code"]["median_us"] * ESP32_FACTOR / 1000, 1)
        result[name + "_code_esp32_ms_from_min"] = round(result[name + "_code"]["min_us"] * ESP32_FACTOR / 1000, 1)
        result[name + "_returning_code_esp32_ms"] = round(
            result[name + "_returning_code"]["median_us"] * ESP32_FACTOR / 1000, 1)
    result["esp32_factor_assumed"] = ESP32_FACTOR
    result["targets"] = {"code_esp32_ms": RIDE_CODE_BUDGET_MS}
    return result


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=50, help="timed checks of a code per algorithm")
    parser.add_argument("--heap", default="192k", help="MicroPython heap")
