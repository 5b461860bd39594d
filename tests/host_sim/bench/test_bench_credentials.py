"""`python -m host_sim bench credentials --json` runs the codecs inside MicroPython and reports the
contract's keys (no timing assertions: benchmarks are commands)."""

import json
import subprocess
import sys

from host_sim.paths import ROOT


def test_bench_credentials_reports_micropython_timings():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "credentials", "--json", "--iterations", "5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    for name in ("cpm_decode", "ticket_verify", "cpm_checks", "cpm_decide"):
        assert set(got[name]) >= {"median_us", "p99_us"} and got[name]["n"] == 5
        assert 0 < got[name]["median_us"] <= got[name]["p99_us"]
    assert "emv_read" in got
