"""`sim run --trace DIR`: a cellular terminal's whole console from power-on and its modem UART both ways, each
line stamped with the simulated time and the wall seconds, written beside an unchanged run."""

import json
import os
import re
import subprocess
import sys

from tests.vboard.helpers import SMALL_SCENARIO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = SMALL_SCENARIO.replace('count = 2\n', 'count = 2\nuplink = "cellular"\ndialect = "simcom"\n', 1)
BANNER = "zhifu terminal on micropython"
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
    assert summary["lost"] == 0 and summary["accepted"] > 0 and summary["power_cuts"] == 1, summary
    names = ("bus-1", "bus-2")
    assert sorted(os.listdir(trace)) == sorted("%s-%s.txt" % (n, kind) for n in names for kind in ("console", "uart"))

    consoles = {n: _lines(trace / ("%s-console.txt" % n)) for n in names}
    for console in consoles.values():
        assert console[0][2].startswith(BANNER), console[:3]  # from power-on, not a tail
        assert any(text.startswith("ready: terminal") for _, _, text in console)
        walls = [w for _, w, _ in console]
        assert walls == sorted(walls)
        # the simulated stamps follow the run's clock: from 07:00 into the second run at 09:00
        simulated = [s for s, _, _ in console]
        assert simulated[0] == 7 * 3600 and simulated == sorted(simulated), simulated[:3]
        assert simulated[-1] >= 9 * 3600, simulated[-1]
    assert max(console[-1][0] for console in consoles.values()) >= 9 * 3600 + 15 * 60  # after the travel to B
    texts = [text for console in consoles.values() for _, _, text in console]
    assert sum(bool(re.match(r"tap #\d+ accepted", t)) for t in texts) == summary["accepted"]
    assert sum(t.startswith("tap declined") for t in texts) == summary["declined"] >= 1  # the expired and garbage
    # bus-1's power cut at 09:00 is one more boot on its console
    boots = {n: sum(text.startswith(BANNER) for _, _, text in console) for n, console in consoles.items()}
    assert boots["bus-1"] == boots["bus-2"] + 1, boots

    for n in names:
        said = [text.split("> ", 1) for _, _, text in _lines(trace / ("%s-uart.txt" % n))]
        assert {who for who, _ in said} == {"board", "modem"}
        # the board's socket open, then the modem's completion URC for it; then payloads both ways
        opened = next(i for i, (who, data) in enumerate(said) if who == "board" and "AT+CIPOPEN=0" in data)
        assert any(who == "modem" and "+CIPOPEN: 0,0" in data for who, data in said[opened:])
        assert any(who == "board" and data.startswith("b'AT+CIPSEND=0,") for who, data in said)
        assert any(who == "modem" and "+CIPRXGET: 2,0," in data for who, data in said)  # the collector's answers
