"""`python -m host_sim bench seal --json`: what sealing card data to the collector costs the terminal.

Runs host_sim/device/bench_seal.py in the MicroPython unix port (the virtual board's VM and heap) and in
CPython, each timing in the same run:
- seal: one record's card data (PAN, expiry, track 2, cryptogram: 50 bytes of TLV) sealed under the current
  epoch key, what a tap pays (firmware/sealing.Sealer);
- wrap: a new epoch key drawn and RSA-OAEP-wrapped to the collector's 2048-bit key, done at boot and when idle;
- hmac: the reference operation, one HMAC-SHA256 of 1024 bytes.
`seal_ratio` and `wrap_ratio` are the medians as multiples of the reference's median, so runs on different
machines compare.
"""

import json
import os
import subprocess
import sys
import tempfile

from host_sim import micropython
from host_sim.backend import sealing
from host_sim.paths import ROOT


def _ratios(runtime, data_bytes, timings):
    ref = max(1, timings["hmac"]["median_us"])
    out = {"runtime": runtime, "card_data_bytes": data_bytes}
    out.update(timings)
    out["seal_ratio"] = round(timings["seal"]["median_us"] / ref, 2)
    out["wrap_ratio"] = round(timings["wrap"]["median_us"] / ref, 2)
    return out


def _cpython(args, modulus):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, micropython.program_path("bench_seal"), str(args.iterations), modulus],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(micropython.RESULT)]
    if proc.returncode != 0 or not lines:
        raise micropython.ProgramFailed("bench_seal failed on CPython:\n%s%s" % (proc.stdout[-micropython.TAIL:],
                                                                              proc.stderr[-micropython.TAIL:]))
    return json.loads(lines[-1][len(micropython.RESULT):])


def run(args):
    with tempfile.TemporaryDirectory() as tmp:
        modulus = os.path.join(tmp, "modulus")
        with open(modulus, "w") as f:
            f.write("%0512x" % sealing.public_modulus())
        mp = micropython.run_program("bench_seal", [args.iterations, modulus], heap=args.heap)
        cp = _cpython(args, modulus)
    return {"micropython": _ratios(*mp), "cpython": _ratios(*cp), "reference": "hmac"}


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation (wrap: a tenth)")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
