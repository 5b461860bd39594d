"""`python -m host_sim bench seal --json` times sealing one record's card data and wrapping an epoch key inside
MicroPython and CPython, each as a ratio to the reference HMAC of the same run (no timing asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build


def test_bench_seal_reports_both_runtimes_as_ratios_to_the_reference():
    cmd = [sys.executable, "-m", "host_sim", "bench", "seal", "--iterations", "20", "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["reference"] == "hmac"
    assert result["micropython"]["runtime"].startswith("micropython ")
    assert result["cpython"]["runtime"].startswith("cpython ")
    for name in ("micropython", "cpython"):
        r = result[name]
        assert r["seal"]["n"] == 20 and r["hmac"]["n"] == 20 and r["wrap"]["n"] == 2, name
        for op in ("seal", "wrap"):
            want = round(r[op]["median_us"] / max(1, r["hmac"]["median_us"]), 2)
            assert r[op + "_ratio"] == want, (name, op)
        assert r["card_data_bytes"] == 50
