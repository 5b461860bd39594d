"""`python -m host_sim bench tap` in small: two rounds of a CPM code, a ticket, a ride code and a contactless
read on a virtual board holding a small deny list; the keys issue 14 names, every tap ending with its
expected display and the figures it reports consistent (no timing asserted)."""

import json
import subprocess
import sys

from host_sim.tools import build

KINDS = ("qr_cpm", "ticket", "ride_code", "contactless")


def _every_tap_ended_as_expected(result, taps):
    assert result["failures"] == [] and result["console_errors"] == [], result
    for kind in KINDS:
        figures = result[kind]
        assert figures["n"] == taps, (kind, figures)
        assert 0 < figures["median_ms"] <= figures["p99_ms"], (kind, figures)


def bench(*args):
    cmd = [sys.executable, "-m", "host_sim", "bench", "tap", *args, "--json"]
    return subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=600)


def test_bench_tap_times_every_kind_through_the_firmware():
    proc = bench("--taps", "2", "--deny-entries", "2000", "--gap", "0.3")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(KINDS) | {"rsa_verify_us", "paced", "clock", "ready", "failures"} <= set(result)
    _every_tap_ended_as_expected(result, 2)
    assert result["paced"] is True and result["clock"] == "host"
    assert result["scanner_baud"] == 115200  # negotiated with the scanner emulator at boot
    ticket = result["ticket"]
    assert ticket["line_ms"] == round(ticket["line_bytes"] * 10 * 1000 / 115200, 1)
    assert result["deny_entries"] == 2000 and result["deny_fill"]["entries"] == 2000
    assert result["deny_cards"] == 2000  # the terminal booted holding them
    assert result["ready"]["heap_used"] > 0 and result["ready"]["heap_free"] > 0
    assert result["rsa_verify_us"] == result["rsa_verify"]["median_us"] > 0


def test_bench_tap_unpaced_leaves_the_line_time_out():
    proc = bench("--taps", "1", "--no-pace", "--gap", "0.3")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["paced"] is False
    _every_tap_ended_as_expected(result, 1)
    assert result["deny_fill"] is None and result["deny_cards"] == 0
    assert all(result[kind]["line_ms"] == 0.0 for kind in ("qr_cpm", "ticket", "ride_code"))


def test_bench_tap_refuses_no_taps():
    proc = bench("--taps", "0")
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "bench tap: --taps must be at least 1, --deny-entries and --gap not negative"]
