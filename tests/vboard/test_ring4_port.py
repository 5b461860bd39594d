"""Ring 4 is ring 3 with --port: the board fixture honours --port.  A virtual board's console and lines stand
in for a real board on a USB port and its serial adapters; an inner pytest runs board tests against it."""

import os
import subprocess
import sys

from host_sim.tools import vboard
from tests.vboard.helpers import ROOT

INNER = [
    "tests/vboard/test_taps.py::test_valid_code_is_paid_after_a_durable_journal_entry",
    "tests/vboard/test_console.py::test_mpremote_fs_cp_copies_a_file_to_the_board",
    "tests/vboard/test_heap.py::test_heap_at_ready_stays_within_budget",
    "tests/vboard/test_console.py::test_synced_flash_data_survives_kill9_and_restart",
]


def inner_pytest(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--runtime",
                           "cpython", "--basetemp", str(tmp_path / "inner"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_board_tests_run_against_the_board_on_port(tmp_path):
    board = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    try:
        board.wait_console(b"ready:", timeout=30)
        boots = board.boots
        proc = inner_pytest(tmp_path, *INNER, "--port", board.ports["console"],
                            "--board-scanner", board.ports["scanner"], "--board-events", board.ports["events"])
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "3 passed, 1 skipped" in out, out
        assert "virtual board only: a power cut by kill" in out, out
        # ... and they ran on this board: its taps, its filesystem, its resets
        assert "tap #3 accepted" in board.console_text()
        with open(os.path.join(board.code_dir, "hello.txt")) as f:
            assert f.read() == "fare table v1\n"
        assert board.boots >= boots + 2  # the fixture restarted it before each of the two `board` tests
    finally:
        board.stop()


def test_a_peripheral_without_an_adapter_skips_with_the_option_it_needs(tmp_path):
    board = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    try:
        board.wait_console(b"ready:", timeout=30)
        proc = inner_pytest(tmp_path, INNER[0], "--port", board.ports["console"])
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "1 skipped" in out and "--board-events DEVICE" in out, out
    finally:
        board.stop()
