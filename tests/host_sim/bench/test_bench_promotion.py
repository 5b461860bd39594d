"""`python -m host_sim bench promotion --json` times a promotion's draw and its budget file inside MicroPython,
with ratios to the reference HMAC of the same run (no timing asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build


def test_bench_promotion_reports_each_operation_and_its_ratio():
    cmd = [sys.executable, "-m", "host_sim", "bench", "promotion", "--iterations", "20", "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["runtime"].startswith("micropython ") and r["reference"] == "hmac"
    assert r["draw"]["n"] == 20 and r["hmac"]["n"] == 20 and r["spend"]["n"] == 2
    for op in ("draw", "spend"):
        assert r[op + "_ratio"] == round(r[op]["median_us"] / max(1, r["hmac"]["median_us"]), 2)
    assert r["draw_alloc_bytes"] > 0
