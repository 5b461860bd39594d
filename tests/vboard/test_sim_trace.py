"""`sim run --trace DIR`: a cellular terminal's whole console from power-on and its modem UART both ways, each
line stamped with the simulated time and the wall seconds, written beside an unchanged run."""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = """\
[scenario]
name = "a traced bus"
date = "2026-12-04"
seed = 5

[[terminals]]
name = "bus"
profile = "bus"
count = 1
uplink = "cellular"
dialect = "simcom"

[timeline]
runs = ["07:00"]

[[stops]]
name = "A"
dwell_s = 60
boardings = 3.0

[[stops]]
name = "B"
travel_s = 900
dwell_s = 60
boardings = 3.0

[passengers]
mix = { cpm = 0.6, forged = 0.2, garbage = 0.2 }
"""
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) \+ *(\d+\.\d{3}) (.*)$")


def _lines(path):
    """[(simulated seconds since midnight, wall seconds, text)] of a trace file; every line must be stamped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for raw in f.read().splitlines():
            m = STAMP.match(raw)
            assert m, raw
            h, mi, s, wall, text = m.groups()
            out.append((int(h) * 3600 + int(mi) * 60 + int(s), float(wall), text))
    return out


def test_a_traced_run_keeps_the_whole_console_and_the_modem_uart(tmp_path):
    path = tmp_path / "bus.toml"
    path.write_text(SCENARIO)
    trace = tmp_path / "trace"
    proc = subprocess.run([sys.executable, "-m", "host_sim", "sim", "run", str(path), "--json", "--trace", str(trace)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["lost"] == 0 and summary["accepted"] > 0, summary
    assert sorted(os.listdir(trace)) == ["bus-1-console.txt", "bus-1-uart.txt"]

    console = _lines(trace / "bus-1-console.txt")
    assert console[0][2].startswith("zhifu terminal on micropython"), console[:3]  # from power-on, not a tail
    assert any(text.startswith("ready: terminal") for _, _, text in console)
    assert sum(bool(re.match(r"tap #\d+ accepted", text)) for _, _, text in console) == summary["accepted"]
    assert sum(text.startswith("tap declined") for _, _, text in console) == summary["declined"] >= 1  # garbage
    walls = [w for _, w, _ in console]
    assert walls == sorted(walls)
    # the simulated stamps follow the run's clock: 07:00 at the first tap, past 07:15 after the travel to B
    simulated = [s for s, _, _ in console]
    assert simulated == sorted(simulated) and simulated[-1] >= 7 * 3600 + 15 * 60, simulated[-1]

    uart = _lines(trace / "bus-1-uart.txt")
    said = [(text.split(">", 1)[0], text.split("> ", 1)[1]) for _, _, text in uart]
    assert {who for who, _ in said} == {"board", "modem"}
    # the board's socket open, then the modem's completion URC for it; then payloads both ways
    opened = next(i for i, (who, data) in enumerate(said) if who == "board" and "AT+CIPOPEN=0" in data)
    assert any(who == "modem" and "+CIPOPEN: 0,0" in data for who, data in said[opened:])
    assert any(who == "board" and data.startswith("b'AT+CIPSEND=0,") for who, data in said)
    assert any(who == "modem" and "+CIPRXGET: 2,0," in data for who, data in said)  # the collector's answers, read
