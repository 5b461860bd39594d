"""`python -m host_sim bench tapstate --json` fills the per-credential state on the virtual board's littlefs
inside MicroPython and times a tap's get and put (no timing asserted): the bound holds, the credentials
tapped are kept, the heap does not grow with them."""

import json
import subprocess
import sys

from host_sim.tools import build


def bench(*args):
    cmd = [sys.executable, "-m", "host_sim", "bench", "tapstate", *args, "--json"]
    return subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=600)


def test_bench_tapstate_reports_a_taps_cost_at_the_bound():
    proc = bench("--credentials", "3200", "--taps", "20")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"get_us", "put_us", "tap_us", "flash_programs_per_tap", "flash_erases_per_tap", "boot_us",
            "heap_bytes"} <= set(result)
    assert result["bound"] == 3072 and result["bucket_bytes"] <= 4096
    assert result["kept"] is True and result["applied"] == 3220  # every put taken, the last one kept
    assert result["flash_programs_per_tap"] > 0
    assert result["heap_bytes"] < 1024  # a 320-byte buffer, whatever the number of credentials


def test_bench_tapstate_refuses_too_few_taps():
    proc = bench("--taps", "1")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["bench tapstate: --credentials must be at least 1, --taps 3"]
