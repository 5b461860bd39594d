"""Taps through the scanner pty: decisions, rejections of bad input, durability across power cuts."""

import os
import random
import threading
import time

import pytest
import serial

from host_sim.backend import serial_server
from host_sim.backend.store import Store
from host_sim.emulators import serial_pty
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import provision, vboard
from protocol import cpm, record
from tests.vboard.helpers import Events, mpremote
from tests.waiting import wait_until

CARD = "6212345678901234569"
PTY_START_BAUD = 38400  # what a new pty reports until its device side sets a rate (Linux)
PAID_ROWS = "SELECT seq, atc, token, amount, time FROM records WHERE decision = %d" % record.ACCEPTED


def code(atc):
    return cpm.encode(CARD, atc=atc, cryptogram=os.urandom(8))


def test_valid_code_is_paid_after_a_durable_journal_entry(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    scanner.present(code(1))
    _, ev = events.wait_display()
    # #1 and #2: the two records of the epoch key the card data is sealed under (SPEC.md "Sealed card data")
    assert ev["text"] == "PAID 2.00" and ev["detail"] == "#000003"
    assert "tap #3 accepted" in board.console_text()


@pytest.mark.virtual_only("watches the firmware process")
def test_garbage_and_overlong_lines_are_rejected_and_the_terminal_keeps_going(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    scanner.present("not a payment code")
    i, ev = events.wait_display()
    assert (ev["text"], ev["detail"]) == ("DECLINED", "unknown code")
    scanner.present("hQVDUFYwM" + "A" * 40)  # looks like CPM, is not
    i, ev = events.wait_display(i + 1)
    assert (ev["text"], ev["detail"]) == ("DECLINED", "bad payment code")
    scanner.present("X" * 3000)  # longer than the driver's line buffer
    i, ev = events.wait_display(i + 1)
    assert (ev["text"], ev["detail"]) == ("DECLINED", "too long")
    scanner.present(bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b""))  # binary noise
    i, ev = events.wait_display(i + 1)
    assert ev["text"] == "DECLINED"
    scanner.present(code(2))
    i, ev = events.wait_display(i + 1)
    assert ev["text"] == "PAID 2.00"
    assert board.proc.poll() is None


def test_the_same_code_twice_is_not_charged_twice(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    payload = code(7)
    scanner.present(payload)
    i, ev = events.wait_display()
    assert ev["text"] == "PAID 2.00"
    scanner.present(payload)
    j, ev = events.wait_display(i + 1)
    assert (ev["text"], ev["detail"]) == ("ALREADY PAID", "#000003")  # after the epoch key's two records
    assert [e for e in events.items[i + 1:j + 1] if e["out"] == "relay"] == []  # the gate stays shut


def lit(items):
    """Which LEDs are on after these output events."""
    on = {}
    for e in items:
        if e["out"] == "led":
            on[e["color"]] = e["on"]
    return sorted(c for c, v in on.items() if v)


def test_one_led_at_a_time_after_accepts_and_declines(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    shown = []
    i = 0
    for payload in (code(11), "not a payment code", code(12), "still not one"):
        scanner.present(payload)
        i, ev = events.wait_display(i)
        shown.append((ev["text"], lit(events.items[:i + 1])))
        i += 1
    assert shown == [("PAID 2.00", ["green"]), ("DECLINED", ["red"]), ("PAID 2.00", ["green"]), ("DECLINED", ["red"])]


@pytest.mark.virtual_only("reads the rates off the board's ptys")
def test_uarts_run_at_the_rates_the_firmware_set(board):
    """The firmware may set the uplink's rate in a task that runs just after "ready:", so wait until
    neither pty still has the rate a new pty starts with, then check both."""

    def set_rates():
        rates = {w.name: serial_pty.line_baud(w.device_fd, default=0) for w in board._wires}
        return rates if PTY_START_BAUD not in (rates["scanner"], rates["uplink"]) else None

    rates = wait_until(set_rates, timeout=5, what="the firmware to set the scanner and uplink rates",
                       context=board.console_text)
    assert rates["scanner"] == 9600
    assert rates["uplink"] == 115200


@pytest.mark.virtual_only("the pacing of the virtual board's ptys")
def test_scanner_pty_is_paced_at_9600_baud(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    payload = code(3)  # ~126 characters: ~0.13 s at 9600 8N1
    start = time.monotonic()
    scanner.present(payload + "\r\n" + "x" * 800)  # plus 0.83 s of filler the terminal will decline
    i, ev = events.wait_display()
    assert ev["text"] == "PAID 2.00"
    i, ev = events.wait_display(i + 1)
    assert ev["text"] == "DECLINED"
    # Pacing can only make delivery slower than the line rate, never faster.
    assert time.monotonic() - start >= (len(payload) + 802) * 10 / 9600 * 0.9


def test_power_cuts_during_taps_lose_no_accepted_tap_and_duplicate_none(tmp_path):
    """Cut power at random moments while codes arrive; every tap signalled as paid reaches the
    collector exactly once, and re-presenting an unanswered code is never charged twice."""
    rng = random.Random(1234)
    store = Store(str(tmp_path / "c.db"))
    board = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    stop = threading.Event()
    capture = bytearray()
    uplink = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop, capture),
                              daemon=True)
    uplink.start()
    events = Events(board.ports["events"])
    scanner = ScannerEmulator(board.ports["scanner"])
    paid = {}
    try:
        board.wait_console(b"ready:", timeout=20)
        mark = board.console_mark()
        provision.provision(board.ports["console"], str(tmp_path / "c.db"))
        board.wait_console(b"ready:", timeout=20, since=mark)
        seen = 0
        for tap in range(12):
            payload = code(500 + tap)
            while True:
                scanner.present(payload)
                if tap % 3 == 2:  # cut somewhere around the end of the code's transmission
                    time.sleep((len(payload) + 2) * 10 / 9600 + rng.uniform(-0.03, 0.02))
                    mark = board.console_mark()
                    board.power_cut()
                    board.power_on()
                    board.wait_console(b"ready:", timeout=20, since=mark)
                try:
                    i, ev = events.wait_display(seen, timeout=3)
                except TimeoutError:
                    continue  # no answer: present again
                seen = i + 1
                if ev["text"].startswith("DECLINED"):
                    continue  # a half-received code after the reboot: present again
                seq = int(ev["detail"].lstrip("#"))
                assert paid.setdefault(tap, seq) == seq, "a re-presented code was charged again"
                if tap % 3 != 2 or rng.random() < 0.5:
                    break
        rows = wait_until(lambda: [found for found in [store.query(PAID_ROWS)]
                                   if {r[0] for r in found} >= set(paid.values())], timeout=20, interval=0.2,
                          what="every paid tap at the collector", context=board.console_text)[0]
    finally:
        stop.set()
        uplink.join(timeout=2)
        events.close()
        scanner.close()
        board.stop()
    seqs = [r[0] for r in rows]
    atcs = [r[1] for r in rows]
    assert set(paid.values()) <= set(seqs), "accepted taps missing at the collector"
    assert len(set(atcs)) == len(atcs), "one presented code stored twice"
    assert len(paid) == 12
    # The uplink carried every record encrypted: no token, ATC, amount or time in the captured bytes.
    wire = bytes(capture)
    assert len(wire) > 12 * 58
    for _, atc, token, amount, when in rows:
        assert token not in wire and token[:8] not in wire
        assert bytes([record.EXT_ATC, 2]) + atc not in wire
        assert amount.to_bytes(4, "little") + (156).to_bytes(2, "little") not in wire
        assert when.to_bytes(4, "little") not in wire


def test_an_unprovisioned_terminal_uploads_nothing(tmp_path, board, events):
    """The collector refuses a terminal it has no key for: the records stay in the journal."""
    store = Store(str(tmp_path / "c.db"))
    stop = threading.Event()
    uplink = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop), daemon=True)
    uplink.start()
    try:
        mark = board.console_mark()
        mpremote(board.ports["console"], "exec", "f = open('/flash/keys/device.key', 'wb'); f.write(bytes(32)); "
                 "f.close()")
        with serial.serial_for_url(board.ports["console"], timeout=1) as con:
            con.write(b"\r\x04")  # back into the firmware, now with a key the collector does not know
        board.wait_console(b"ready:", timeout=20, since=mark)
        scanner = ScannerEmulator(board.ports["scanner"])
        scanner.present(code(9))
        _, ev = events.wait_display()
        assert ev["text"] == "PAID 2.00"
        time.sleep(3)  # a check that nothing happens: time in which a wrongly accepted upload would land
        scanner.close()
    finally:
        stop.set()
        uplink.join(timeout=2)
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]
    assert store.query("SELECT COUNT(*) FROM terminals") == [(0,)]
