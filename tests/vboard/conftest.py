"""Ring 3: the firmware as a MicroPython process on a virtual board (ring 4 with --port)."""

import os
import subprocess
import sys

import pytest

from host_sim.tools import vboard
from host_sim.tools.events import EventLog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def board(tmp_path):
    """A started virtual board on a fresh flash image, booted to its ready line."""
    b = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    try:
        b.wait_console(b"ready:", timeout=20)
        yield b
    finally:
        b.stop()


@pytest.fixture
def console_port(request, tmp_path):
    """The REPL port of the board under test: a real board with --port, else a virtual one."""
    port = request.config.getoption("--port", default=None)
    if port:
        yield port
        return
    b = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    try:
        b.wait_console(b"ready:", timeout=20)
        yield b.ports["console"]
    finally:
        b.stop()


def mpremote(port, *args, timeout=30):
    """Run mpremote against a port exactly as a technician would; returns stdout."""
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    proc = subprocess.run([exe, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "mpremote %s failed:\n%s\n%s" % (" ".join(args), proc.stdout, proc.stderr)
    return proc.stdout


Events = EventLog  # the tests read output events the way the demo does


@pytest.fixture
def events(board):
    ev = Events(board.ports["events"])
    yield ev
    ev.close()
