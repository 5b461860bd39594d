"""The console pty behaves like a board's USB REPL: mpremote exec and fs cp work against it."""

import pytest
import serial

from host_sim.tools import vboard
from tests.vboard.helpers import mpremote


def test_mpremote_exec_runs_on_micropython(console_port):
    out = mpremote(console_port, "exec", "import sys; print(sys.implementation.name)")
    assert out.strip().splitlines()[-1] == "micropython"


def test_mpremote_fs_cp_copies_a_file_to_the_board(console_port, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("fare table v1\n")
    mpremote(console_port, "fs", "cp", str(src), ":hello.txt")
    out = mpremote(console_port, "exec", "print(open('hello.txt').read())")
    assert out.strip().splitlines()[-1] == "fare table v1"


def test_ctrl_d_at_the_friendly_repl_reboots_into_the_firmware(board):
    mpremote(board.ports["console"], "exec", "x = 1")  # leaves the board at the friendly REPL
    mark = board.console_mark()
    with serial.serial_for_url(board.ports["console"], timeout=1) as con:
        con.write(b"\r\x04")  # Ctrl-D: soft reset, which runs main.py again as on a real board
        board.wait_console(b"ready:", timeout=20, since=mark)


@pytest.mark.virtual_only("a power cut by kill")
def test_synced_flash_data_survives_kill9_and_restart(board):
    mpremote(board.ports["console"], "exec",
             "f = open('/flash/state.bin', 'wb'); f.write(b'synced-123'); f.flush(); f.close()")
    boots = board.boots
    mark = board.console_mark()
    board.power_cut()
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=mark)
    assert board.boots == boots + 1
    out = mpremote(board.ports["console"], "exec", "print(open('/flash/state.bin', 'rb').read())")
    assert out.strip().splitlines()[-1] == "b'synced-123'"


@pytest.mark.virtual_only("a second board on the same flash image")
def test_second_board_on_the_same_flash_is_refused(board, tmp_path):
    second = vboard.VirtualBoard(board.flash)
    try:
        second.start()
    except vboard.FlashInUse as e:
        assert board.flash in str(e)
    else:
        second.stop()
        raise AssertionError("a second board started on a flash image already in use")
    # The first board is untouched and still answers.
    out = mpremote(board.ports["console"], "exec", "print(40 + 2)")
    assert out.strip().splitlines()[-1] == "42"


def test_flash_is_free_again_after_stop(tmp_path):
    path = str(tmp_path / "flash.img")
    first = vboard.VirtualBoard(path).start()
    first.stop()
    second = vboard.VirtualBoard(path).start()
    try:
        second.wait_console(b"ready:", timeout=20)
    finally:
        second.stop()
