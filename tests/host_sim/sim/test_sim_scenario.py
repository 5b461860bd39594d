"""Scenario files: the shipped ones are valid; every mistake is refused with the file, line and key."""

import glob
import os
import subprocess
import sys

import pytest

from host_sim.sim import scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "host_sim", "sim", "scenarios", "*.toml")))

GOOD = """\
[scenario]
name = "tiny"
date = "2026-12-04"

[[terminals]]
name = "bus"
profile = "bus"
count = 2

[timeline]
runs = ["07:00", "08:00"]

[[stops]]
name = "A"
dwell_s = 60

[[stops]]
name = "B"
travel_s = 300
dwell_s = 60
boardings = 3.0

[passengers]
boardings = 2.0
mix = { cpm = 0.8, garbage = 0.2 }

[[faults]]
kind = "power_cut"
terminal = "bus-2"
at = "07:30"
"""


def test_the_three_shipped_scenarios_are_valid():
    names = {scenario.load(path)["name"] for path in SHIPPED}
    assert names == {"village bus day", "school bus morning and afternoon", "scenic gate holiday peak"}


def test_a_scenario_means_terminals_runs_stops_and_faults_in_simulated_seconds():
    sc = scenario.parse("s.toml", GOOD)
    assert [t["name"] for t in sc["terminals"]] == ["bus-1", "bus-2"]
    assert sc["runs"][1] - sc["runs"][0] == 3600
    assert sc["runs"][0] - sc["midnight"] == 7 * 3600
    assert sc["stops"][0]["boardings"] == 2.0 and sc["stops"][1]["boardings"] == 3.0
    assert sc["faults"] == [{"kind": "power_cut", "terminal": "bus-2", "at_s": sc["midnight"] + 7 * 3600 + 1800}]
    assert sc["simulated_s"] == 3600 + 60 + 300 + 60


@pytest.mark.parametrize("old, new, where", [
    ('count = 2', 'count = 2\ncolour = "red"', "s.toml:9: terminals[0].colour: unknown key"),
    ('profile = "bus"', 'profile = "ferry"', "s.toml:7: terminals[0].profile: no such profile 'ferry'"),
    ('boardings = 3.0', 'boardings = -1.0', "s.toml:21: stops[1].boardings: must not be negative"),
    ('runs = ["07:00", "08:00"]', 'runs = ["07:00", "25:00"]', "s.toml:11: timeline.runs: '25:00' is not a time"),
    ('runs = ["07:00", "08:00"]', 'runs = ["07:00", "07:05"]', "s.toml:11: timeline.runs: a run takes 420 s"),
    ('at = "07:30"', 'at = "7.30"', "s.toml:30: faults[0].at: '7.30' is not a time"),
    ('terminal = "bus-2"', 'terminal = "bus-3"', "s.toml:29: faults[0].terminal: no terminal 'bus-3'"),
    ('kind = "power_cut"', 'kind = "flood"', "s.toml:28: faults[0].kind: 'flood' is not one of"),
    ('garbage = 0.2', 'coins = 0.2', "s.toml:25: passengers.mix: unknown credential 'coins'"),
    ('dwell_s = 60\n\n[[stops]]', 'dwell_s = "a minute"\n\n[[stops]]', "s.toml:15: stops[0].dwell_s: must be int"),
    ('date = "2026-12-04"', 'date = "2026-13-04"', "s.toml:3: scenario.date: not a date"),
    ('[passengers]', '[weather]\nrain = 1\n\n[passengers]', "s.toml:23: weather: unknown table"),
])
def test_a_mistake_is_refused_with_the_file_line_and_key(old, new, where):
    assert old in GOOD
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.parse("s.toml", GOOD.replace(old, new, 1))
    assert str(e.value).startswith(where), str(e.value)


def test_a_missing_key_and_a_file_that_is_not_toml_are_refused():
    with pytest.raises(scenario.ScenarioError, match=r"^s.toml:5: terminals\[0\].profile: is missing"):
        scenario.parse("s.toml", GOOD.replace('profile = "bus"\n', ""))
    with pytest.raises(scenario.ScenarioError, match="^s.toml: not TOML"):
        scenario.parse("s.toml", "[scenario\n")


def test_sim_run_refuses_a_bad_scenario_in_one_line_without_starting_a_board(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("count = 2", "count = -2"))
    proc = subprocess.run([sys.executable, "-m", "host_sim", "sim", "run", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "sim run: %s:8: terminals[0].count: must not be negative (-2)\n" % path
    assert proc.stdout == ""
