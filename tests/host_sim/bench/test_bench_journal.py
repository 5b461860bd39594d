"""`python -m host_sim bench journal --cuts 500 --json`: the power-cut trials CI runs, with zero counts."""

import json
import subprocess
import sys

from host_sim.tools import build

KEYS = {
    "trials",
    "acknowledged_lost",
    "duplicates",
    "corrupt_accepted",
    "mount_failures",
    "records_per_mb",
    "storage_efficiency",
    "append_us_median",
    "append_us_p99",
    "programs_per_record",
    "erases_on_tap_path",
    "recovery_ms_full",
}


def test_500_power_cut_trials_lose_nothing():
    cmd = [sys.executable, "-m", "host_sim", "bench", "journal", "--cuts", "500", "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["trials"] == 500
    for key in ("acknowledged_lost", "duplicates", "corrupt_accepted", "mount_failures", "erases_on_tap_path"):
        assert result[key] == 0, (key, result)
    # the flash-format properties (counts, not timings): programs and capacity of the record layout
    assert result["programs_per_record"] <= 2
    assert result["records_per_mb"] >= 8000 and result["storage_efficiency"] >= 0.90
