"""`sim run`: a scenario on virtual boards on the simulator's clock, deterministic for a seed."""

import os
import re
import signal
import subprocess
import sys
import time

from host_sim.backend.store import Store
from host_sim.sim import run, scenario
from tests.vboard.helpers import SMALL_SCENARIO as SMALL
from tests.vboard.helpers import processes
from tests.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(tmp_path, name, seed):
    workdir = tmp_path / name
    workdir.mkdir()
    summary = run.simulate(scenario.parse("small.toml", SMALL), seed, str(workdir))
    store = Store(str(workdir / "collector.db"))
    try:
        times = [r[0] for r in store.query("SELECT time FROM records")]
    finally:
        store.close()
    return summary, times


def test_the_same_seed_gives_the_same_digest_and_another_seed_another(tmp_path):
    sc = scenario.parse("small.toml", SMALL)
    first, times = _run(tmp_path, "a", 5)
    again, _ = _run(tmp_path, "b", 5)
    other, _ = _run(tmp_path, "c", 6)
    assert first["taps"] == len(run.schedule(sc, 5)) > 0
    assert first["lost"] == 0 and first["duplicates"] == 0 and first["power_cuts"] == 1
    assert first["uploaded"] == first["accepted"] and first["terminals"] == 2
    assert first["simulated_s"] == sc["simulated_s"]
    for key in ("taps", "accepted", "declined", "uploaded", "revenue_fen", "declines", "digest"):
        assert again[key] == first[key], key
    assert other["digest"] != first["digest"]
    # the records carry the simulator's time (07:00..09:17 local), not the host's
    assert times and all(sc["runs"][0] <= t <= sc["runs"][0] + sc["simulated_s"] for t in times)


def _how_it_ended(proc):
    """What a `sim run` that never showed its boards said, if it has ended."""
    if proc.poll() is None:
        return "sim run still running; processes: %r" % [row for row in processes() if row[1] == proc.pid]
    return "sim run ended with %s: %s" % (proc.returncode, proc.stderr.read())


def test_ctrl_c_stops_every_board_and_says_how_far_the_run_got(tmp_path):
    path = tmp_path / "day.toml"
    path.write_text(SMALL.replace("boardings = 2.0", "boardings = 30.0"))
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "sim", "run", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def boards():
            """The live board processes, read from /proc (a board power-cut a moment ago may linger as a
            zombie; `ps` is not on every machine)."""
            return [pid for pid, ppid, state, args in processes()
                    if ppid == proc.pid and state != "Z" and "micropython" in args]

        started = wait_until(lambda: len(boards()) >= 2 and boards(), timeout=60,
                             what="two board processes", context=lambda: _how_it_ended(proc))
        time.sleep(3)  # some taps under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    m = re.fullmatch(r"sim run: interrupted at (\d\d:\d\d) simulated after (\d+) of (\d+) taps; every board "
                     r"stopped\n", err)
    assert m and "07:00" <= m.group(1) < "10:00" and 0 < int(m.group(2)) < int(m.group(3)), err
    assert out == ""
    for pid in started:
        assert not os.path.exists("/proc/%d" % pid)


GARBAGE_TWICE = """\
[scenario]
name = "garbage at two runs"
date = "2026-12-04"

[[terminals]]
name = "bus"
profile = "bus"

[timeline]
runs = ["07:00", "08:00"]

[[stops]]
name = "A"
dwell_s = 1
boardings = 3.0

[passengers]
mix = { garbage = 1 }
"""


def test_the_boards_ticks_follow_the_simulated_clock(tmp_path):
    # Identical declines within 30 s of ticks are one record (firmware/declines.py).  The whole run takes a
    # few real seconds; an hour of simulated time lies between the runs, so each run has its own record.
    sc = scenario.parse("garbage.toml", GARBAGE_TWICE)
    times = [t[0] for t in run.schedule(sc, 3)]
    assert times.count(sc["runs"][0]) == 2 and times.count(sc["runs"][1]) == 2
    summary = run.simulate(sc, 3, str(tmp_path))
    assert summary["declined"] == 4
    assert summary["declines"] == {"unknown code": 2}
