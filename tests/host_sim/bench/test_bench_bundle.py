"""`python -m host_sim bench bundle --json` runs fleet-bundle activation inside MicroPython and reports
its keys (no timing assertions: benchmarks are commands)."""

import json
import subprocess
import sys

from host_sim.tools import build
from protocol import fleet


def test_bench_bundle_reports_micropython_timings():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "bundle", "--json", "--iterations", "5"],
                         cwd=build.ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    for name in ("rsa_verify", "fares", "ticket_keys"):
        assert got[name]["n"] == 5 and 0 < got[name]["median_us"] <= got[name]["p99_us"]
    assert got["ticket_keys"]["bytes"] == fleet.MAX_SIZE  # the largest bundle a terminal takes
