"""The virtual board reports a firmware that cannot boot, and mpremote's reset restarts the terminal."""

import json
import os
import subprocess
import sys

from host_sim.tools import vboard
from tests.vboard.helpers import ROOT, mpremote


def vboard_first_line(tmp_path, *args):
    proc = subprocess.run([sys.executable, "-m", "host_sim", "vboard", "--flash", str(tmp_path / "f.img"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=90,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    return proc.returncode, json.loads(proc.stdout.splitlines()[0])


def test_a_heap_too_small_to_boot_is_an_error_with_the_firmware_reason(tmp_path):
    code, first = vboard_first_line(tmp_path, "--heap", "16k")
    assert code == 1
    assert "did not boot" in first["error"] and "MemoryError" in first["error"]


def test_a_corrupt_flash_image_is_an_error_and_is_left_as_it_was(tmp_path):
    image = tmp_path / "f.img"
    garbage = os.urandom(5 * 1024 * 1024)  # longer than the image (hardware/boards/virtual.py): nothing padded
    image.write_bytes(garbage)
    code, first = vboard_first_line(tmp_path)
    assert code == 1
    assert "littlefs partition is corrupt" in first["error"]
    assert image.read_bytes() == garbage


def test_mpremote_reset_restarts_the_terminal(tmp_path):
    board = vboard.VirtualBoard(str(tmp_path / "f.img")).start()
    try:
        assert board.wait_booted() is None
        boots = board.boots
        mark = board.console_mark()
        mpremote(board.ports["console"], "reset")
        board.wait_console(b"ready: terminal", timeout=20, since=mark)
        assert board.boots > boots
    finally:
        board.stop()
