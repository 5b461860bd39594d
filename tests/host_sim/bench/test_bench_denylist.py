"""`python -m host_sim bench denylist --json` fills a deny list on the virtual board's littlefs inside
MicroPython, times lookups, deltas and a merge, and reports the keys issue 14 names (no timing asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build


def bench(*args):
    cmd = [sys.executable, "-m", "host_sim", "bench", "denylist", *args, "--json"]
    return subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=600)


def test_bench_denylist_reports_lookups_deltas_heap_flash_and_the_rsa_reference():
    proc = bench("--entries", "20000", "--lookups", "300", "--delta", "200")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"entries", "lookup_us", "apply_delta_us", "heap_bytes", "flash_bytes", "rsa_verify_us"} <= set(result)
    assert result["entries"] == 20000 and result["install_bundles"] == 2  # 16 384 tokens a bundle
    assert set(result["lookup_us"]) >= {"median", "p99"} and result["lookup_us"]["n"] == 300
    assert result["lookup_wrong"] == 0  # every listed token found, every other one not
    assert result["entries_at_lookup"] == 20000 + 3 * (200 - 20)
    assert result["merged"] is True and result["heap_check_hits"] > 0
    assert result["flash_bytes"] == 24 + 6 * 20000 + 4 * (2 ** 10 + 1)
    assert result["heap_bytes"] < 2048  # the list's size does not reach the heap
    assert result["lookup_to_rsa"] == round(result["lookup_us"]["median"] / result["rsa_verify_us"], 4)


def test_bench_denylist_refuses_a_list_too_small_to_measure():
    proc = bench("--entries", "10")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "bench denylist: --entries must be at least 1000, --delta 10, --lookups 3"]
