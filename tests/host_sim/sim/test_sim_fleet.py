"""`sim fleet`: a small fleet against a real collector stores every tap exactly once, the same seed gives the
same stored records, and the check that reports lost and duplicate records sees both (no timings asserted)."""

import json
import random
import sqlite3
import subprocess
import sys

from host_sim.backend.store import Store
from host_sim.sim import fleet
from host_sim.tools import build

KEYS = {"terminals", "taps", "stored", "lost", "duplicates", "records_per_s", "latency_ms", "queue_depth",
        "collector_cpu_seconds", "simulated_s", "wall_s", "seed", "digest"}


def _sim(*args):
    return subprocess.run([sys.executable, "-m", "host_sim", "sim", "fleet", *args], cwd=build.ROOT,
                          capture_output=True, text=True, timeout=300)


def test_twenty_terminals_store_every_tap_once_and_report_the_keys():
    proc = _sim("--terminals", "20", "--taps-per-terminal", "5", "--simulated-s", "60", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["terminals"] == 20 and result["taps"] == 100 and result["stored"] == 100
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["unacknowledged"] == 0
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert set(result["queue_depth"]) == {"p50", "p99", "max"}
    assert 1 <= result["queue_depth"]["max"] <= 5
    top = result["queue_depth_top"]
    assert len(top) == 10 and top[0]["depth"] == result["queue_depth"]["max"]
    assert [(-t["depth"], t["name"]) for t in top] == sorted((-t["depth"], t["name"]) for t in top)
    assert {t["name"] for t in top} <= {fleet.ident_of(i).hex() for i in range(20)}
    assert "boards" not in result  # no boards: the result is today's


def test_the_same_seed_stores_the_same_records_and_another_seed_does_not(tmp_path):
    digests = [fleet.run_fleet(str(tmp_path / ("c%d.db" % i)), 5, taps=4, seed=seed, simulated_s=30)["digest"]
               for i, seed in enumerate((7, 7, 8))]
    assert digests[0] == digests[1] != digests[2]


def test_the_check_counts_a_missing_record_as_lost_and_a_changed_one_as_a_duplicate(tmp_path):
    db = str(tmp_path / "c.db")
    Store(db).close()
    terms = [fleet.Terminal(0), fleet.Terminal(1)]
    rng = random.Random(1)
    for term in terms:
        for when in range(3):
            term.tap(when, rng)
    con = sqlite3.connect(db)
    rows = [(t.ident.hex(), seq, raw) for t in terms for seq, raw in enumerate(t.journal, 1)]
    rows[1] = (rows[1][0], rows[1][1], rows[1][2][:-1] + b"\x00")  # stored bytes differ from the journal
    del rows[4]  # terminal 1's seq 2 never stored
    con.executemany("INSERT INTO records (terminal, seq, raw) VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    stored, lost, duplicates, _ = fleet._check(db, terms)
    assert (stored, lost, duplicates) == (5, 1, 1)


def test_a_fleet_of_no_terminals_is_refused_in_one_line():
    proc = _sim("--terminals", "0")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--terminals" in proc.stderr


def test_a_negative_board_count_is_refused_in_one_line():
    proc = _sim("--terminals", "2", "--boards", "-1")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--boards" in proc.stderr


def test_an_existing_database_is_refused_in_one_line(tmp_path):
    db = tmp_path / "old.db"
    db.write_bytes(b"")
    proc = _sim("--terminals", "2", "--db", str(db))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["sim fleet: --db %s exists; the fleet needs a new database" % db]
