"""bench capture: its JSON has every key, and the replayed collector holds the recorded records."""

import json

from host_sim import __main__ as cli


def test_bench_capture_replays_the_same_records_and_reports_its_rates(capsys):
    assert cli.main(["bench", "capture", "--records", "60", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["records"] == 60 and result["same_records"] is True
    assert result["capture_bytes_per_record"] > 40  # at least a record's bytes each, plus framing
    assert result["decode_records_per_s"] > 0 and result["replay_records_per_s"] > 0
