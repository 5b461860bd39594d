"""Ring 3: the firmware as a MicroPython process on a virtual board; ring 4: the same tests with --port.

With --port DEVICE the `board` fixture is that board (host_sim/tools/serial_board.py: its console bridged to a
pty the tests' mpremote, provision and console calls use), restarted to its ready line before each test.  Its
peripherals are serial adapters wired to its UARTs, named with --board-scanner, --board-nfc, --board-uplink,
--board-gps, --board-driver and --board-events; the tests' emulators serve them as they serve a virtual board's
ptys.  A test that reaches a peripheral with no adapter is skipped with the option it needs.  A test that
needs what only a virtual board has (the flash image, a power cut by kill, its process, its ptys) is marked
`virtual_only(reason)` and skipped with that reason; a test that takes no board fixture starts its own virtual
boards (or none) and stays in ring 3.
"""

import os
import subprocess
import sys

import pytest

from host_sim.tools import serial_board, vboard
from tests.vboard.helpers import Events

ADAPTERS = vboard.PERIPHERALS + ("events",)
BOARD_FIXTURES = ("board", "console_port")
HERE = os.path.dirname(os.path.abspath(__file__))
RESTART_TIMEOUT_S = 30  # a locked REPL never answers: fail in this time, with the reason


def pytest_configure(config):
    config.addinivalue_line("markers", "virtual_only(reason): needs the virtual board's internals; skipped with "
                                       "--port")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("port", None):
        return
    for item in items:
        if not str(item.path).startswith(HERE + os.sep):
            continue
        mark = item.get_closest_marker("virtual_only")
        if mark is not None:
            item.add_marker(pytest.mark.skip(reason="virtual board only: " + mark.args[0]))
        elif not set(BOARD_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason="ring 3 only: takes no board fixture (starts its own "
                                                    "virtual boards, or none)"))


class Adapters(dict):
    """A real board's ports: a peripheral without an adapter skips the test that reaches for it."""

    def __missing__(self, name):
        pytest.skip("needs the board's %s line on a serial adapter: pass --board-%s DEVICE" % (name, name))


def restart(board):
    """Reset the board on --port (machine.reset through mpremote) and wait for its ready line: each test
    starts from a boot, as on a fresh virtual board."""
    mark = board.console_mark()
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    try:
        subprocess.run([exe, "connect", board.ports["console"], "reset"], capture_output=True,
                       timeout=RESTART_TIMEOUT_S)
        board.wait_console(b"ready:", timeout=RESTART_TIMEOUT_S, since=mark)
    except (subprocess.TimeoutExpired, TimeoutError):
        pytest.fail("the board on %s did not restart to its ready line: ring 4 needs a board whose REPL is open "
                    "(flashed, not provisioned)" % board.port, pytrace=False)


def serial_board_on(config):
    adapters = {name: config.getoption("board_" + name) for name in ADAPTERS}
    b = serial_board.SerialBoard(config.getoption("port"), {k: v for k, v in adapters.items() if v})
    b.start()
    b.ports = Adapters(b.ports)
    return b


@pytest.fixture
def board(request, tmp_path):
    """A board booted to its ready line: a started virtual board on a fresh flash image, or with --port the
    board on that port (restarted)."""
    if request.config.getoption("port", None):
        b = serial_board_on(request.config)
        try:
            restart(b)
            yield b
        finally:
            b.stop()
        return
    b = vboard.VirtualBoard(str(tmp_path / "flash.img")).start()
    try:
        b.wait_console(b"ready:", timeout=20)
        yield b
    finally:
        b.stop()


@pytest.fixture
def console_port(request, tmp_path):
    """The REPL port of the board under test: the board on --port, else a virtual one."""
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
