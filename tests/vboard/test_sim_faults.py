"""`sim run` with faults and uplinks: a coverage gap, a collector crash, an acquirer outage and a power
cut on a serial line and on a cellular modem (emulated, over loopback TCP); nothing lost, nothing duplicated, the same
digest for the same seed whatever the link and its faults; a recorded run replayed to a fresh collector
leaves the same stored records."""

import glob
import os
import subprocess
import sys

from host_sim.backend.store import Store
from host_sim.sim import capture, run, scenario
from tests.vboard.helpers import free_port, start_collector

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERIAL = """\
[scenario]
name = "faults on a bus"
date = "2026-12-04"
seed = 5

[[terminals]]
name = "bus"
profile = "bus"
count = 1

[timeline]
runs = ["07:00", "08:00"]

[[stops]]
name = "A"
dwell_s = 60
boardings = 2.0

[[stops]]
name = "B"
travel_s = 900
dwell_s = 60
boardings = 2.0

[passengers]
mix = { cpm = 0.8, forged = 0.2 }

[[faults]]
kind = "coverage_gap"
terminal = "bus-1"
at = "07:10"
until = "07:50"

[[faults]]
kind = "collector_crash"
at = "08:10"
until = "08:30"

[[faults]]
kind = "acquirer_outage"
at = "07:00"
until = "08:05"

[[faults]]
kind = "power_cut"
terminal = "bus-1"
at = "08:00"
"""
CELLULAR = SERIAL.replace('count = 1\n', 'count = 1\nuplink = "cellular"\ndialect = "quectel"\n', 1) + """
[[faults]]
kind = "modem_fault"
terminal = "bus-1"
fault = "close_after"
value = 200
at = "07:01"
"""
RECORDS = "SELECT terminal, seq, time, kind, amount, currency, decision, reason, hex(atc), hex(token) FROM records " \
          "ORDER BY terminal, seq"


def _rows(db, sql=RECORDS):
    store = Store(db)
    try:
        return store.query(sql)
    finally:
        store.close()


def _replayed(tmp_path, run_db, captures):
    """The records a fresh `collector --listen` holds once every capture was replayed to it."""
    fresh = str(tmp_path / "fresh.db")
    source, target = Store(run_db), Store(fresh)
    try:
        for (terminal,) in source.query("SELECT terminal FROM device_keys"):
            target.register(terminal, source.device_key(terminal))  # provisioned there, as in the field
    finally:
        source.close()
        target.close()
    port = free_port()
    server = start_collector(fresh, port, str(tmp_path / "fresh.log"))
    try:
        for path in captures:
            proc = subprocess.run([sys.executable, "-m", "host_sim", "sim", "replay", path, "--to",
                                   "127.0.0.1:%d" % port, "--db", run_db], cwd=ROOT, capture_output=True, text=True,
                                  timeout=60)
            assert proc.returncode == 0, proc.stderr
    finally:
        server.kill()
        server.wait()
    return _rows(fresh)


def _during(sc, seed, kind):
    """The scenario's first fault of `kind` and the tap times while it lasts."""
    fault = next(f for f in sc["faults"] if f["kind"] == kind)
    return fault, [t for t, *_ in run.schedule(sc, seed) if fault["at_s"] <= t < fault["until_s"]]


def test_serial_faults_lose_nothing_keep_the_digest_and_a_recorded_run_replays_to_the_same_records(tmp_path):
    sc = scenario.parse("serial.toml", SERIAL)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    rec = str(tmp_path / "rec")
    a = run.simulate(sc, 5, str(first), record_dir=rec)
    b = run.simulate(sc, 5, str(second))
    assert a["lost"] == b["lost"] == 0 and a["duplicates"] == b["duplicates"] == 0
    assert a["uploaded"] == a["accepted"] > 0
    assert a["digest"] == b["digest"]
    assert a["faults"] == {"acquirer_outage": 1, "collector_crash": 1, "coverage_gap": 1, "power_cut": 1}
    gap, in_gap = _during(sc, 5, "coverage_gap")
    _, in_crash = _during(sc, 5, "collector_crash")
    assert in_gap and in_crash
    assert a["offline_taps"] == b["offline_taps"] == len(in_gap) + len(in_crash)  # the backlogs uploaded after
    assert a["pending_at_acquirer_return"] > 0  # decided only once the acquirer answered again
    assert a["issuer_declined"] > 0  # the forged codes, decided after the outage
    captures = sorted(glob.glob(os.path.join(rec, "*.zfcap")))
    assert [os.path.basename(p) for p in captures] == ["bus-1-serial.zfcap"]
    cap = capture.read(captures[0])
    assert cap.header["clock"] == "simulated"
    # While coverage was gone the collector heard nothing: no bytes either way inside the gap (the first
    # second of its first tap aside, when the gap was being applied).
    quiet = [e for e in cap.entries if in_gap[0] + 1 <= e.t_us // 1_000_000 < gap["until_s"]]
    assert quiet == []
    assert any(e.t_us // 1_000_000 >= gap["until_s"] for e in cap.entries)
    original = _rows(str(first / "collector.db"))
    assert _replayed(tmp_path, str(first / "collector.db"), captures) == original


def test_a_cellular_uplink_through_modem_faults_records_what_a_serial_one_does_and_replays(tmp_path):
    serial_sc = scenario.parse("serial.toml", SERIAL)
    sc = scenario.parse("cellular.toml", CELLULAR)
    assert sc["terminals"][0]["uplink"] == "cellular"
    workdir = tmp_path / "cellular"
    workdir.mkdir()
    rec = str(tmp_path / "rec")
    summary = run.simulate(sc, 5, str(workdir), record_dir=rec)
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["faults"] == {"acquirer_outage": 1, "collector_crash": 1, "coverage_gap": 1, "modem_fault": 1,
                                 "power_cut": 1}  # the board and its modem lose power together
    # The same passengers, so the same records and decisions as over a serial line without modem faults
    # (the serial test checks that digest against a second run).
    reference = tmp_path / "serial"
    reference.mkdir()
    assert summary["digest"] == run.simulate(serial_sc, 5, str(reference))["digest"]
    captures = sorted(glob.glob(os.path.join(rec, "*.zfcap")))
    assert [os.path.basename(p) for p in captures] == ["bus-1-tcp.zfcap"]
    assert _replayed(tmp_path, str(workdir / "collector.db"), captures) == _rows(str(workdir / "collector.db"))
