"""Ring 3: the firmware as a MicroPython process on a virtual board (ring 4 with --port)."""

import pytest

from host_sim.tools import vboard
from tests.vboard.helpers import Events


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


@pytest.fixture
def events(board):
    """The output events of `board`, read in the background."""
    ev = Events(board.ports["events"])
    yield ev
    ev.close()
