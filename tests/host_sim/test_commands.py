"""The command contract: first-line JSON of vboard and emulators, the demo's last-line JSON."""

import json
import os
import select
import subprocess
import sys

import pytest
import serial

from host_sim.tools import build

ROOT = build.ROOT


def first_line(proc, timeout=30):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output from %r" % proc.args
    return json.loads(proc.stdout.readline())


def test_vboard_prints_its_ports_then_a_second_one_is_refused(tmp_path):
    flash = str(tmp_path / "f.img")
    cmd = [sys.executable, "-m", "host_sim", "vboard", "--flash", flash]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ports = first_line(proc)
        assert set(ports) == {"console", "scanner", "nfc", "uplink", "gps", "driver", "events", "flash"}
        assert ports["flash"] == flash
        for name in ("console", "scanner", "nfc", "uplink", "gps", "driver", "events"):
            assert os.path.exists(ports[name]) and ports[name].startswith("/dev/pts/")
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "in use" in json.loads(second.stdout.splitlines()[0])["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_emulate_scanner_prints_its_port_and_sends_lines_at_the_line_rate(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "emulate", "scanner"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = first_line(proc)["port"]
        with serial.Serial(port, 9600, timeout=5) as ser:
            proc.stdin.write("hQVDUFYwMWE=\n")
            proc.stdin.flush()
            assert ser.read_until(b"\r\n") == b"hQVDUFYwMWE=\r\n"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_demo_ends_with_every_accepted_tap_stored_once():
    proc = subprocess.run([sys.executable, "-m", "host_sim", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["accepted"] >= 15
    assert summary["accepted"] + summary["declined"] == summary["taps"] == 25  # A: 20 + forged + garbage; B: 3
    assert summary["terminals"] == 2
    assert summary["issuer_declined"] >= 1 and summary["refused_elsewhere"] >= 1  # the forged code's story
    assert "refused at terminal B" in proc.stdout
    assert summary["uploaded"] == summary["accepted"]
    assert summary["declined_records"] >= 1  # the garbage line, stored at the collector as a declined tap
    assert summary["runtime"].startswith("micropython")
    assert summary["power_cuts"] == 1
