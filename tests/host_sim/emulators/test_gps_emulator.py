"""The GPS emulator (host_sim/emulators/gps.py) on a pty: RMC and GGA with correct checksums each period,
the route played in order, and its fault modes (garbage, bad checksums, no fix, silence) as the terminal's
NMEA parser sees them; `emulate gps` prints its port first and refuses a bad route with one line."""

import json
import subprocess
import sys
import time

import serial

from firmware.drivers import gps as nmea
from host_sim.emulators.gps import GpsEmulator
from host_sim.tools import build

A = (30270000, 120150000)
B = (30280000, 120160000)


def statuses(port, seconds):
    """(statuses of complete lines, last position) read from `port` for `seconds`; the first line is left
    out (reading may start in the middle of it)."""
    parser = nmea.Nmea()
    seen = []
    with serial.serial_for_url(port, baudrate=9600, timeout=0.05) as s:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data = s.read(256)
            for i in range(len(data)):  # one byte at a time: every line's own status
                got = parser.feed(data[i:i + 1], 1)
                if got != nmea.NONE:
                    seen.append(got)
    return seen[1:], (parser.lat_e6, parser.lon_e6)


def test_a_route_then_each_fault_mode():
    emu = GpsEmulator([A, B], dwell=2, period=0.1).start()
    try:
        seen, at = statuses(emu.port, 0.6)
        assert seen and set(seen) == {nmea.FIX} and at == B  # two periods at A, then B to the end
        for mode, expect in (("bad-checksum", {nmea.BAD_CHECKSUM}), ("no-fix", {nmea.NO_FIX}),
                             ("garbage", {nmea.GARBAGE, nmea.BAD_CHECKSUM, nmea.OTHER})):
            emu.mode = mode
            time.sleep(0.15)
            seen, _ = statuses(emu.port, 0.5)
            assert seen and set(seen) <= expect and nmea.FIX not in seen, (mode, seen)
        emu.mode = "silence"
        time.sleep(0.15)
        assert statuses(emu.port, 0.4)[0] == []
    finally:
        emu.close()


def test_emulate_gps_command():
    cmd = [sys.executable, "-m", "host_sim", "emulate", "gps", "--route", "30270000,120150000"]
    proc = subprocess.Popen(cmd, cwd=build.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["port"].startswith("/dev/pts/") and first["mode"] == "ok" and first["points"] == 1
        proc.stdin.write("silence\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"mode": "silence", "point": 0}
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    bad = subprocess.run(cmd[:-1] + ["north"], cwd=build.ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "emulate gps: --route wants LAT_E6,LON_E6 (micro-degrees), got 'north'"
