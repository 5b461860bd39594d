"""`python -m host_sim provision`: the key lands on the board and in the collector, and the rebooted
terminal authenticates with it and uploads."""

import json
import subprocess
import sys
import threading

import pytest

from host_sim.backend import serial_server
from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import build
from protocol import cpm, record
from tests.vboard.helpers import mpremote
from tests.waiting import wait_until


def test_provision_command_registers_the_key_and_the_terminal_uploads(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    mark = board.console_mark()
    proc = subprocess.run([sys.executable, "-m", "host_sim", "provision", "--port", board.ports["console"], "--db", db],
                          cwd=build.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["terminal"] == "5642000001000000" and out["key_file"] == "/flash/keys/device.key"
    assert out["verified"] == ["/flash/keys/device.key", "/flash/keys/seal.pub", "/flash/keys/token"]  # read back
    store = Store(db)
    key = store.device_key(out["terminal"])
    assert key is not None and len(key) == 32
    assert key.hex() not in proc.stdout + proc.stderr  # the key is never printed
    board.wait_console(b"ready:", timeout=20, since=mark)  # the board rebooted into its firmware

    stop = threading.Event()
    server = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop), daemon=True)
    server.start()
    try:
        ScannerEmulator(board.ports["scanner"]).present(cpm.encode("6212345678901234569", atc=41,
                                                                    cryptogram=bytes(8)))
        _, ev = events.wait_display()
        assert ev["text"] == "PAID 2.00"
        taps = "SELECT COUNT(*) FROM records WHERE kind != %d" % record.KIND_SEAL_KEY  # not the epoch key's records
        wait_until(lambda: store.query(taps) == [(1,)], timeout=15, interval=0.2,
                   what="the tap stored at the collector", context=board.console_text)
    finally:
        stop.set()
        server.join(timeout=2)
    on_board = mpremote(board.ports["console"], "exec",
                        "import board\nfrom firmware import keystore, uplink\nkeystore.use(board.secret())\n"
                        "print(open('/flash/keys/device.key', 'rb').read()[:4], "
                        "uplink.read_key('/flash/keys/device.key').hex())")
    assert on_board.strip().splitlines()[-1] == "b'ZKW1' " + key.hex()  # wrapped on flash (firmware/keystore.py)
    assert store.query("SELECT runtime FROM terminals") == [("micropython 1.29.0 linux",)]


def test_provision_fails_clearly_without_a_board(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "host_sim", "provision", "--port", str(tmp_path / "nothing"),
                           "--db", str(tmp_path / "c.db")], cwd=build.ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "provision failed" in proc.stderr
    assert Store(str(tmp_path / "c.db")).query("SELECT COUNT(*) FROM device_keys") == [(0,)]


@pytest.mark.virtual_only("a second virtual board with the same hardware id")
def test_a_second_board_with_a_registered_id_is_refused_unless_replace(board, tmp_path):
    from host_sim.tools import provision, vboard

    db = str(tmp_path / "c.db")
    first = provision.provision(board.ports["console"], db, reset=False)
    again = provision.provision(board.ports["console"], db, reset=False)  # the same board, re-keyed
    assert again == first
    key = Store(db).device_key(first)
    other = vboard.VirtualBoard(str(tmp_path / "other.img")).start()  # the same hardware id, another board
    try:
        assert other.wait_booted() is None
        proc = subprocess.run([sys.executable, "-m", "host_sim", "provision", "--port", other.ports["console"],
                               "--db", db, "--no-reset"], cwd=build.ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        assert "already registered to another board's key" in proc.stderr and "--replace" in proc.stderr
        assert Store(db).device_key(first) == key  # the first board still uploads
        assert provision.provision(other.ports["console"], db, reset=False, replace=True) == first
        assert Store(db).device_key(first) != key
    finally:
        other.stop()
