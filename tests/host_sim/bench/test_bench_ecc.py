"""`python -m host_sim bench ecc --json` verifies SM2, P-256 and RSA-2048 signatures inside MicroPython
in one run and reports the contract's keys (no timing assertions: benchmarks are commands)."""

import json
import subprocess
import sys

from host_sim.paths import ROOT


def test_bench_ecc_reports_micropython_timings():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "ecc", "--json", "--iterations", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    for name in ("sm2_verify", "p256_verify", "sm2_verify_fixed_key", "p256_verify_fixed_key",
                 "rsa2048_verify", "sm3_64_bytes"):
        assert got[name]["n"] == 3
        assert 0 < got[name]["min_us"] <= got[name]["median_us"] <= got[name]["p99_us"]
    assert 0 < got["table_bytes"] < 8192
    assert got["ratio_sm2_to_rsa"] > 0 and got["ride_code_chain_us"] > 0
