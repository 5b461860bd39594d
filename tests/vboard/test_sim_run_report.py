"""`sim run --live --report DIR` on virtual boards: the JSON alone on stdout, a report whose numbers are the
run's, and the same digest as a run nobody watched."""

import json
import os
import subprocess
import sys

from host_sim.sim import report, run, scenario
from host_sim.tools.build import ROOT
from tests.vboard.helpers import SMALL_SCENARIO as SMALL


def test_a_watched_run_reports_what_it_did_and_records_what_an_unwatched_one_does(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "host_sim", "sim", "run", str(path), "--json", "--live",
                           "--report", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    # The live view went to stderr: each terminal with its display and LEDs, the collector's counters.
    for want in ("bus-1", "bus-2", "pending authorisations", "approved", "%d of %d" % (summary["taps"],
                                                                                   summary["taps"])):
        assert want in proc.stderr, (want, proc.stderr[-3000:])
    # the last thing each display showed: back to READY, or still the last tap's answer
    assert any(text in proc.stderr for text in ("READY", "PAID", "DECLINED", "SEE DRIVER")), proc.stderr[-3000:]
    numbers = json.loads((out / "timeline.json").read_text())
    assert numbers["taps"] == summary["taps"]
    assert numbers["accepted"] == summary["accepted"] and numbers["declined"] == summary["declined"]
    assert numbers["stored"] == summary["uploaded"]
    assert set(numbers["declines"]) == set(summary["declines"])
    assert {r["terminal"] for r in numbers["terminals"]} == {"bus-1", "bus-2"}
    assert set(numbers["revenue_fen"]) == {"bus (bus)"} and numbers["revenue_fen"]["bus (bus)"] >= \
        summary["revenue_fen"]
    assert json.loads((out / "summary.json").read_text()) == summary
    text = (out / "index.html").read_text()
    for name in report.PLOTS:
        assert os.path.getsize(out / (name + ".png")) > 1000 and 'src="%s.png"' % name in text
    workdir = tmp_path / "unwatched"
    workdir.mkdir()
    unwatched = run.simulate(scenario.parse("small.toml", SMALL), 5, str(workdir))
    assert unwatched["digest"] == summary["digest"]
