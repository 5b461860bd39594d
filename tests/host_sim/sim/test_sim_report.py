"""`--report DIR` (host_sim/sim/report.py): the files, the HTML's plots and table against the events it was
fed, the directory checks before a run, and `sim fleet --report DIR --live` end to end."""

import html
import json
import os
import re
import struct
import subprocess
import sys

import pytest

from host_sim.sim import report, timeline
from host_sim.tools import build

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fed():
    """Three terminals on two routes over 06:00-12:00 with known taps, declines, stores."""
    tl = timeline.Timeline("a test day", groups={"bus-1": "route7", "bus-2": "route7", "gate-1": "scenic"})
    tl.clock(6 * 3600, 6 * 3600, 12 * 3600)
    taps = [(6 * 3600 + 60, "bus-1", "PAID 2.00", "", 200, 0), (6 * 3600 + 90, "bus-1", "PAID 1.50", "", 150, 50),
            (7 * 3600, "bus-2", "DECLINED", "card expired", 0, 0),
            (8 * 3600, "bus-2", "DECLINED", "card expired", 0, 0),
            (8 * 3600 + 5, "gate-1", "SEE DRIVER", "unknown code", 0, 0),
            (11 * 3600, "gate-1", "PAID 30.00", "", 3000, 0)]
    for sim_s, name, text, reason, amount, subsidy in taps:
        tl.tap(sim_s, name, "cpm", text, reason, amount, subsidy)
    for seq, (sim_s, name, depth, latency) in enumerate([(6 * 3600 + 70, "bus-1", 1, 0.5),
                                                         (6 * 3600 + 95, "bus-1", 0, 1.5),
                                                         (11 * 3600 + 3, "gate-1", 0, 0.25)], 1):
        tl.queue(sim_s - 1, name, depth + 1)
        tl.stored(sim_s, name, seq, latency)
        tl.queue(sim_s, name, depth)
    return tl


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def _table(text, table_id):
    body = re.search(r'<table id="%s">(.*?)</table>' % table_id, text, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]:
        rows.append([html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)])
    return rows


def test_the_report_has_every_plot_as_a_png_and_a_table_of_the_events(tmp_path):
    tl = _fed()
    summary = {"taps": 6, "accepted": 3, "declined": 3, "digest": "ab" * 32}
    out = tmp_path / "report"
    report.check_dir(str(out))
    report.write(str(out), tl, summary)
    text = (out / "index.html").read_text()
    for name in report.PLOTS:
        assert 'src="%s.png"' % name in text
        width, height = _png_size(out / (name + ".png"))
        assert width >= 800 and height >= 200
    assert json.loads((out / "summary.json").read_text()) == summary
    rows = {r[0]: r for r in _table(text, "terminals")}
    # terminal, route, taps, accepted, declined, stored, max queue, mean latency ms, fares, subsidy
    assert rows["bus-1"] == ["bus-1", "route7", "2", "2", "0", "2", "2", "1000.0", "3.50", "0.50"]
    assert rows["bus-2"] == ["bus-2", "route7", "2", "0", "2", "0", "0", "-", "0.00", "0.00"]
    assert rows["gate-1"] == ["gate-1", "scenic", "2", "1", "1", "1", "1", "250.0", "30.00", "0.00"]
    assert rows["all"][2:7] == ["6", "3", "3", "3", "2"] and rows["all"][8:] == ["33.50", "0.50"]
    assert _table(text, "declines") == [["card expired", "2"], ["unknown code", "1"]]
    numbers = json.loads((out / "timeline.json").read_text())
    assert numbers["revenue_fen"] == {"route7": 350, "scenic": 3000}
    assert numbers["taps_per_hour"] == {"bus-1 06:00": 2, "bus-2 07:00": 1, "bus-2 08:00": 1, "gate-1 08:00": 1,
                                        "gate-1 11:00": 1}
    assert numbers["latency_ms"]["p50"] == 500.0
    assert "https://" not in text and "http://" not in text  # opens with no network


def test_a_fleet_report_shows_its_busiest_in_the_table_and_a_heat_map(tmp_path):
    tl = timeline.Timeline("fleet", default_group="fleet")
    tl.clock(0, 0, 3600)
    for i in range(report.TABLE_ROWS + 30):
        name = "T%04d" % i
        for k in range(1 + i % 4):
            tl.tap(k * 600 + i, name, "cpm", "PAID 2.00", "", 200, 0)
            tl.queue(k * 600 + i, name, k + 1)
    report.write(str(tmp_path), tl, {"terminals": report.TABLE_ROWS + 30})
    text = (tmp_path / "index.html").read_text()
    rows = _table(text, "terminals")
    assert len(rows) == report.TABLE_ROWS + 1  # the busiest, then all
    assert rows[0][2] == "4" and rows[-1][0] == "all" and rows[-1][2] == str(sum(1 + i % 4 for i in range(80)))
    assert "The %d busiest of 80 terminals" % report.TABLE_ROWS in text
    assert "Taps per 10 minutes per terminal" in text
    for name in report.PLOTS:
        _png_size(tmp_path / (name + ".png"))


def test_a_report_directory_that_is_not_empty_or_cannot_be_written_is_refused(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(report.ReportError, match="exists and is not empty"):
        report.check_dir(str(tmp_path / "full"))
    with pytest.raises(report.ReportError, match="is not a directory"):
        report.check_dir(str(tmp_path / "file"))
    with pytest.raises(report.ReportError, match="cannot be written"):
        report.check_dir(str(tmp_path / "file" / "sub"))
    report.check_dir(str(tmp_path / "new" / "dir"))
    assert os.listdir(tmp_path / "new" / "dir") == []


def _sim(*args):
    return subprocess.run([sys.executable, "-m", "host_sim", "sim", *args], cwd=build.ROOT, capture_output=True,
                          text=True, timeout=300)


def test_sim_run_and_fleet_refuse_a_full_report_directory_in_one_line_before_they_start(tmp_path):
    (tmp_path / "x").write_text("x")
    scenario = os.path.join(build.ROOT, "host_sim", "sim", "scenarios", "school_bus.toml")
    for args, command in ((("run", scenario), "sim run"), (("fleet", "--terminals", "3"), "sim fleet")):
        proc = _sim(*args, "--report", str(tmp_path), "--live")
        assert proc.returncode == 2
        assert proc.stderr == "%s: --report %s exists and is not empty (a report goes in a new or empty " \
                              "directory)\n" % (command, tmp_path)
        assert proc.stdout == ""


def test_a_fleet_with_live_and_report_keeps_the_json_alone_on_stdout(tmp_path):
    out = tmp_path / "report"
    proc = _sim("fleet", "--terminals", "20", "--taps-per-terminal", "3", "--simulated-s", "600", "--json",
                "--live", "--report", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["stored"] == 60
    assert "10 busiest of 20 terminals (links: up 20)" in proc.stderr
    assert "60 of 60" in proc.stderr  # the taps' progress bar, at its end
    numbers = json.loads((out / "timeline.json").read_text())
    assert (numbers["taps"], numbers["stored"]) == (60, 60)
    assert sum(r["taps"] for r in numbers["terminals"]) == 60
    assert numbers["revenue_fen"] == {"fleet": 60 * 200}
    assert json.loads((out / "summary.json").read_text()) == result
    text = (out / "index.html").read_text()
    for name in report.PLOTS:
        assert 'src="%s.png"' % name in text
        _png_size(out / (name + ".png"))
