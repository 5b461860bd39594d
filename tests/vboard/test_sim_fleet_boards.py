"""`sim fleet --boards K`: full virtual boards in the fleet, on its simulated clock, served by its collector;
their records carry the seeded simulated seconds, count in the fleet's figures and in its digest."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from host_sim.sim import fleet, timeline
from host_sim.tools import build
from protocol import record
from tests.vboard.helpers import processes
from tests.waiting import wait_until


def _tap_rows(db, prefix):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT terminal, seq, time - ?, kind FROM records WHERE terminal LIKE ? AND kind IN (%s) "
                           "ORDER BY time, terminal" % ",".join(str(k) for k in record.TAP_KINDS),
                           (fleet.EPOCH, prefix + "%")).fetchall()
    finally:
        con.close()


def test_two_boards_and_eight_terminals_store_every_tap_once_at_its_simulated_second(tmp_path):
    db = str(tmp_path / "a.db")
    seen = timeline.Timeline()
    result = fleet.run_fleet(db, 8, taps=3, seed=4, simulated_s=40, boards=2, observer=seen)
    boards = result["boards"]
    assert (boards["boards"], boards["taps"], boards["accepted"], boards["stored"]) == (2, 6, 6, 6)
    assert boards["lost"] == 0 and boards["duplicates"] == 0
    assert set(boards["latency_ms"]) == {"p50", "p90", "p99", "max"} and boards["latency_ms"]["max"] > 0
    assert result["taps"] == 8 * 3 + 6 and result["stored"] == 8 * 3 + 6
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["unacknowledged"] == 0
    top = result["queue_depth_top"]
    assert len(top) == 10 and [t["depth"] for t in top] == sorted((t["depth"] for t in top), reverse=True)
    assert {t["name"] for t in top} == {fleet.ident_of(i).hex() for i in range(8)} | {"5643000001000000",
                                                                                      "5643000002000000"}
    # the boards' taps at the seconds the seed drew for them, in the same order
    rng = random.Random("boards 4")
    drawn = sorted((rng.randrange(40), i) for i in range(2) for _ in range(3))
    stored = _tap_rows(db, "5643")
    assert [r[2] for r in stored] == [when for when, _ in drawn]
    assert all(r[3] == record.KIND_QR_CPM for r in stored)

    # the observer saw the boards' taps, answers and stored records
    for name in ("board1", "board2"):
        state = seen.terminals[name]
        assert (state.taps, state.accepted, state.stored, state.revenue_fen) == (3, 3, 3, 600)
        assert state.text.startswith("PAID") and state.depth == 0

    again = fleet.run_fleet(str(tmp_path / "b.db"), 8, taps=3, seed=4, simulated_s=40, boards=2)
    assert again["digest"] == result["digest"]
    assert again["digest"] != fleet.run_fleet(str(tmp_path / "c.db"), 8, taps=3, seed=4, simulated_s=40)["digest"]



def _children(pid):
    """(pid, command line) of the live processes whose parent is `pid`."""
    return [(p, args) for p, ppid, state, args in processes() if ppid == pid and state != "Z"]


def test_ctrl_c_stops_the_collector_and_every_board():
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "sim", "fleet", "--terminals", "20", "--boards", "2",
                             "--taps-per-terminal", "500", "--simulated-s", "3600"], cwd=build.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def started():
            kids = _children(proc.pid)
            collector = [pid for pid, args in kids if "collector" in args]
            boards = [pid for pid, args in kids if "micropython" in args]
            return collector and len(boards) == 2 and collector + boards

        pids = wait_until(started, timeout=120, what="the collector and two boards",
                          context=lambda: "still running" if proc.poll() is None else proc.stderr.read())
        time.sleep(3)  # taps under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err == "sim fleet: interrupted; the collector and every board were stopped\n"
    assert out == ""
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid)
