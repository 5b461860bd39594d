"""Scenario uplinks and faults: cellular terminals with a modem dialect, coverage gaps, modem faults,
collector crashes and acquirer outages mean simulated times; every mistake names file, line and key.
The fault schedule hands out starts and ends in time order."""

import os
import subprocess
import sys

import pytest

from host_sim.sim import faults, scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BASE = """\
[scenario]
name = "faults"
date = "2026-12-04"

[[terminals]]
name = "bus"
profile = "bus"
uplink = "cellular"
dialect = "quectel"
count = 1

[[terminals]]
name = "gate"
profile = "scenic"
count = 1

[timeline]
runs = ["07:00", "09:00"]

[[stops]]
name = "A"
dwell_s = 600

[[stops]]
name = "B"
travel_s = 1800
dwell_s = 600

[passengers]
mix = { cpm = 1.0 }

[[faults]]
kind = "coverage_gap"
terminal = "bus-1"
at = "07:20"
until = "07:40"

[[faults]]
kind = "modem_fault"
terminal = "bus-1"
fault = "close_after"
value = 300
at = "09:05"

[[faults]]
kind = "collector_crash"
at = "09:10"
until = "09:20"

[[faults]]
kind = "acquirer_outage"
terminal = "all"
at = "07:00"
until = "09:30"

[[faults]]
kind = "coverage_gap"
terminal = "all"
at = "09:30"
until = "09:40"
"""


def test_uplinks_and_faults_mean_terminals_and_simulated_seconds():
    sc = scenario.parse("f.toml", BASE)
    m = sc["midnight"]
    assert sc["terminals"] == [
        {"name": "bus-1", "profile": "bus", "board": "virtual", "uplink": "cellular", "dialect": "quectel"},
        {"name": "gate-1", "profile": "scenic", "board": "virtual", "uplink": "serial"}]
    assert sc["faults"] == [
        {"kind": "coverage_gap", "terminal": "bus-1", "at_s": m + 7 * 3600 + 1200, "until_s": m + 7 * 3600 + 2400},
        {"kind": "modem_fault", "terminal": "bus-1", "at_s": m + 9 * 3600 + 300, "fault": "close_after", "value": 300},
        {"kind": "collector_crash", "terminal": None, "at_s": m + 9 * 3600 + 600, "until_s": m + 9 * 3600 + 1200},
        {"kind": "acquirer_outage", "terminal": None, "at_s": m + 7 * 3600, "until_s": m + 9 * 3600 + 1800},
        {"kind": "coverage_gap", "terminal": "all", "at_s": m + 9 * 3600 + 1800, "until_s": m + 9 * 3600 + 2400}]


@pytest.mark.parametrize("old, new, where", [
    ('dialect = "quectel"', 'dialect = "nokia"', "f.toml:9: terminals[0].dialect: a cellular uplink needs dialect"),
    ('dialect = "quectel"\n', '', "f.toml:5: terminals[0].dialect: a cellular uplink needs dialect"),
    ('uplink = "cellular"\ndialect = "quectel"', 'uplink = "pigeon"', "f.toml:8: terminals[0].uplink: 'pigeon' is not"),
    ('count = 1\n\n[timeline]', 'count = 1\ndialect = "simcom"\n\n[timeline]',
     "f.toml:16: terminals[1].dialect: only a cellular uplink has a modem dialect"),
    ('until = "07:40"', 'until = "07:10"', "f.toml:36: faults[0].until: 07:10 is not after at (07:20)"),
    ('until = "07:40"', 'until = "7h40"', "f.toml:36: faults[0].until: '7h40' is not a time"),
    ('until = "07:40"\n', '', "f.toml:32: faults[0].until: is missing"),
    ('at = "07:20"', 'at = "05:00"', "f.toml:35: faults[0].at: 05:00 is outside the scenario's day (07:00 to 09:50)"),
    ('at = "09:30"\nuntil = "09:40"', 'at = "23:00"\nuntil = "23:30"',
     "f.toml:59: faults[4].at: 23:00 is outside the scenario's day"),
    ('fault = "close_after"', 'fault = "rain"', "f.toml:41: faults[1].fault: 'rain' is not a modem fault"),
    ('terminal = "bus-1"\nfault', 'terminal = "gate-1"\nfault',
     "f.toml:40: faults[1].terminal: gate-1 has a serial uplink: a modem fault needs a cellular one"),
    ('terminal = "bus-1"\nfault', 'terminal = "all"\nfault', "f.toml:40: faults[1].terminal: a modem_fault hits one"),
    ('kind = "collector_crash"', 'kind = "collector_crash"\nterminal = "bus-1"',
     "f.toml:47: faults[2].terminal: a collector_crash hits every terminal"),
    ('kind = "collector_crash"', 'kind = "collector_crash"\nvalue = 3',
     "f.toml:47: faults[2].value: only a modem_fault"),
    ('terminal = "bus-1"\nat = "07:20"', 'at = "07:20"', "f.toml:32: faults[0].terminal: is missing"),
    ('terminal = "bus-1"\nat = "07:20"', 'terminal = "bus-9"\nat = "07:20"',
     "f.toml:34: faults[0].terminal: no terminal 'bus-9'"),
    ('kind = "collector_crash"\nat = "09:10"', 'kind = "power_cut"\nterminal = "gate-1"\nat = "09:10"',
     "f.toml:49: faults[2].until: a power_cut has no end"),
    ('kind = "acquirer_outage"', 'kind = "acquirer_nap"', "f.toml:51: faults[3].kind: 'acquirer_nap' is not one of"),
])
def test_a_fault_or_uplink_mistake_is_refused_with_the_file_line_and_key(old, new, where):
    assert old in BASE
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.parse("f.toml", BASE.replace(old, new, 1))
    assert str(e.value).startswith(where), str(e.value)


def test_the_schedule_hands_out_starts_and_ends_in_time_order_and_leaves_power_cuts_to_the_run():
    m = 1000
    plan = faults.Schedule([
        {"kind": "coverage_gap", "terminal": "a", "at_s": m + 10, "until_s": m + 50},
        {"kind": "power_cut", "terminal": "a", "at_s": m + 5},
        {"kind": "acquirer_outage", "terminal": None, "at_s": m + 50, "until_s": m + 90},
    ])
    assert plan.due(m + 9) == []
    assert [(p, f["kind"]) for p, f in plan.due(m + 50)] == [("start", "coverage_gap"), ("end", "coverage_gap"),
                                                             ("start", "acquirer_outage")]
    assert plan.due(m + 60) == []
    assert [(p, f["kind"]) for p, f in plan.rest()] == [("end", "acquirer_outage")]


class _Link:
    def __init__(self):
        self.calls = []

    def coverage(self, up):
        self.calls.append(("coverage", up))

    def crash(self):
        self.calls.append(("crash",))

    def restart(self):
        self.calls.append(("restart",))


class _Links:
    def __init__(self):
        self.links = {"a": _Link(), "b": _Link()}

    def names(self):
        return list(self.links)

    def get(self, name):
        return self.links[name]

    def crash(self):
        for link in self.links.values():
            link.crash()

    def restart(self):
        for link in self.links.values():
            link.restart()


class _Observer:
    def __init__(self):
        self.seen = []

    def link(self, name, state):
        self.seen.append((name, state))


def test_overlapping_gaps_keep_a_link_down_until_the_last_ends_and_offline_taps_are_counted():
    links, observer = _Links(), _Observer()
    inj = faults.Injector(links, None, observer)
    one = {"kind": "coverage_gap", "terminal": "a", "at_s": 0, "until_s": 20}
    every = {"kind": "coverage_gap", "terminal": "all", "at_s": 10, "until_s": 30}
    inj.apply("start", one)
    inj.tap("a")
    inj.tap("b")
    inj.apply("start", every)
    inj.tap("b")
    inj.apply("end", one)
    inj.tap("a")
    inj.apply("end", every)
    inj.tap("a")
    assert links.get("a").calls == [("coverage", False), ("coverage", True)]
    assert links.get("b").calls == [("coverage", False), ("coverage", True)]
    assert observer.seen == [("a", "coverage gap"), ("b", "coverage gap"), ("a", "up"), ("b", "up")]
    assert inj.offline_taps == 3 and inj.counts == {"coverage_gap": 2}
    crash = {"kind": "collector_crash", "terminal": None, "at_s": 40, "until_s": 50}
    inj.apply("start", crash)
    inj.apply("start", crash)  # two crashes overlapping: the collector is back when both are over
    inj.tap("b")
    inj.apply("end", crash)
    inj.tap("b")
    inj.apply("end", crash)
    inj.tap("b")
    assert links.get("b").calls[-2:] == [("crash",), ("restart",)]
    assert inj.offline_taps == 5 and inj.counts == {"coverage_gap": 2, "collector_crash": 2}


FOLDERS = [("--record", "record", "one capture file per terminal link goes there"),
           ("--trace", "trace", "each terminal's console and modem UART trace go there")]


@pytest.mark.parametrize("option, verb, what", FOLDERS)
def test_sim_run_refuses_a_record_or_trace_folder_that_is_not_empty_before_starting_a_board(tmp_path, option,
                                                                                             verb, what):
    path = tmp_path / "f.toml"
    path.write_text(BASE)
    busy = tmp_path / "rec"
    busy.mkdir()
    (busy / "old.zfcap").write_bytes(b"")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for folder, said in ((busy, "%s %s is not empty (%s)" % (option, busy, what)),
                         (blocked / "sub", "cannot %s into %s: Not a directory" % (verb, blocked / "sub"))):
        proc = subprocess.run([sys.executable, "-m", "host_sim", "sim", "run", str(path), option, str(folder)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert proc.stderr == "sim run: %s\n" % said
        assert proc.stdout == ""
    assert os.listdir(busy) == ["old.zfcap"]
