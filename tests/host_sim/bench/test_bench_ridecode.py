"""`python -m host_sim bench ridecode --json` checks SM2 and P-256 ride codes inside MicroPython with the
real verifier and reports the contract's keys (no timing assertions: benchmarks are commands)."""

import json
import subprocess
import sys

from host_sim.paths import ROOT


def test_bench_ridecode_reports_micropython_timings():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "ridecode", "--json", "--iterations", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    for name in ("sm2", "p256"):
        assert got[name + "_code"]["n"] == 3
        assert 0 < got[name + "_code"]["min_us"] <= got[name + "_code"]["median_us"]
        assert got[name + "_first_code_of_issuer_us"] > 0 and got[name + "_code_esp32_ms"] > 0
        assert got[name + "_issuer_prepare_us"] > 0
        assert got[name + "_returning_code"]["n"] == 3 and got[name + "_returning_code_esp32_ms"] > 0
