"""Ring 3: the firmware as a MicroPython process on a virtual board (ring 4 with --port)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import serial

from host_sim import vboard

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


class Events:
    """Output events of a board (display, LEDs, buzzer, relay) as parsed JSON lines."""

    def __init__(self, port):
        self.ser = serial.serial_for_url(port, timeout=0.1)
        self.items = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        buf = b""
        while not self._stop:
            try:
                buf += self.ser.read(512)
            except (serial.SerialException, OSError):
                time.sleep(0.05)
                continue
            *lines, buf = buf.split(b"\n")
            for line in lines:
                with self._cond:
                    self.items.append(json.loads(line))
                    self._cond.notify_all()

    def wait_display(self, start=0, timeout=10):
        """The first display event at or after index `start`; returns (index, event)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.items)):
                    if self.items[i]["out"] == "display" and self.items[i]["text"] != "READY":
                        return i, self.items[i]
                left = deadline - time.monotonic()
                assert left > 0, "no display event; events so far: %r" % self.items[-10:]
                self._cond.wait(left)

    def close(self):
        self._stop = True
        self._thread.join(timeout=1)
        self.ser.close()


@pytest.fixture
def events(board):
    ev = Events(board.ports["events"])
    yield ev
    ev.close()
