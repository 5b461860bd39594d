"""`python -m host_sim bench frames --json` times the terminal's per-frame work inside MicroPython and
reports each operation with its sample count (no timing asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build


def test_bench_frames_runs_on_micropython_and_reports_every_operation():
    cmd = [sys.executable, "-m", "host_sim", "bench", "frames", "--iterations", "20", "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["runtime"].startswith("micropython ")
    for op in ("encode", "decode", "aes_ctr", "hmac", "seal_open"):
        assert result[op]["n"] == 20 and 0 <= result[op]["median_us"] <= result[op]["p99_us"], op
    parts = [result[op]["median_us"] for op in ("encode", "decode")] + [2 * result["aes_ctr"]["median_us"],
                                                                        2 * result["hmac"]["median_us"]]
    assert result["frame_us"] == sum(parts)
    assert 272 < result["wire_bytes"] <= 288
