"""`bench drain` in small: a virtual board with 500 buffered records drains them over the paced
115200-baud uplink pty into the collector, every record exactly once (no timings asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build


def test_drain_500_buffered_records_reach_the_collector_exactly_once(tmp_path):
    cmd = [sys.executable, "-m", "host_sim", "bench", "drain", "--records", "500", "--json",
           "--workdir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"records", "baud", "seconds", "line_rate_bound_s", "ratio"} <= set(result)
    assert result["journal_depth"] == 500 and result["expected_last_seq"] == 500
    assert result["records"] == result["distinct"] == 500
    assert (result["first_seq"], result["last_seq"]) == (1, 500)
    assert result["duplicate_receipts"] == 0
    assert result["baud"] == 115200
    # the bound is the records' own bytes at baud/10 bytes per second
    assert result["line_rate_bound_s"] == round(result["record_bytes"] / 11520, 2)
    assert result["wire_bytes"] > 0
