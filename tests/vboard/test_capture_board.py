"""A virtual board's real session, recorded by the collector on its serial uplink, replayed with
`sim replay --to` to a fresh collector (itself recording with `collector --record`): the fresh collector
then holds the same records, byte for byte; the host's side played back to the board names where the
board's answers part from the recording (host_sim/sim/capture.py, protocol/CAPTURE.md)."""

import os
import subprocess
import sys
import threading

from host_sim.backend import serial_server
from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.sim import capture, replay
from host_sim.tools import build, provision, vboard
from protocol import cpm
from tests.host_sim.helpers import free_port, start_collector
from tests.vboard.helpers import Events
from tests.waiting import wait_until

CARD = "6212345678901234569"
ROWS = "SELECT terminal, seq, raw FROM records ORDER BY terminal, seq"


def test_a_boards_recorded_session_replays_to_a_fresh_collector_with_the_same_records(tmp_path):
    db_a, db_b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    store = Store(db_a)
    board = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    stop = threading.Event()
    recorder = capture.Recorder(str(tmp_path / "field"))
    uplink = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop),
                              kwargs={"recorder": recorder}, daemon=True)
    uplink.start()
    events = Events(board.ports["events"])
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        board.wait_console(b"ready:", timeout=20)
        mark = board.console_mark()
        provision.provision(board.ports["console"], db_a)
        board.wait_console(b"ready:", timeout=20, since=mark)
        seen = 0
        for atc in (1, 2, 3):
            scanner.present(cpm.encode(CARD, atc=atc, cryptogram=os.urandom(8)))
            seen = events.wait_display(seen)[0] + 1
        wait_until(lambda: len(store.query(ROWS)) >= 5, timeout=30, interval=0.2,
                   what="the taps and the epoch key records at the collector", context=board.console_text)
        stop.set()
        uplink.join(timeout=2)
        mark = board.console_mark()
        board.power_cut()  # a fresh start: the board opens its link with a HELLO, as in the recording
        board.power_on()
        board.wait_console(b"ready:", timeout=20, since=mark)
        # the host's side played to the same board: it answers the recorded HELLO with its own AUTH, and the
        # recorded host AUTH, made for another nonce, is where the session cannot follow the recording
        field = max((str(tmp_path / "field" / f) for f in os.listdir(tmp_path / "field")), key=os.path.getsize)
        played = replay.as_host(capture.read(field), board.ports["uplink"], speed=4, settle=3)
        assert played["first_divergence"] is not None, played
        assert played["first_divergence"]["frame"] >= 1, played  # the board's HELLO matches the recorded one
    finally:
        stop.set()
        uplink.join(timeout=2)
        events.close()
        scanner.close()
        board.stop()
    original = store.query(ROWS)
    terminal = original[0][0]
    files = sorted(os.listdir(tmp_path / "field"))
    assert files and all(f.startswith("serial-") for f in files)

    fresh = Store(db_b)
    fresh.register(terminal, store.device_key(terminal))
    fresh.close()
    store.close()
    port = free_port()
    proc, conn = start_collector(db_b, port, "--record", str(tmp_path / "replayed"))
    conn.close()
    try:
        for f in files:
            run = subprocess.run([sys.executable, "-m", "host_sim", "sim", "replay", str(tmp_path / "field" / f),
                                  "--to", "127.0.0.1:%d" % port, "--db", db_a], cwd=build.ROOT,
                                 capture_output=True, text=True, timeout=60)
            assert run.returncode == 0 or "no complete handshake" in run.stderr, run.stderr
        replayed = Store(db_b)
        assert wait_until(lambda: replayed.query(ROWS) == original or None, timeout=10, interval=0.2,
                          what="the same records at the fresh collector")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert os.listdir(tmp_path / "replayed"), "collector --record wrote no capture"
