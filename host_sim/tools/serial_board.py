"""A board on a serial port (a real board's USB console, or any console pty), seen the way the board tests
see a virtual board: `ports`, `console_text()`, `console_mark()`, `wait_console()`.

The console port has one reader: this bridge.  It copies the board's output into a tail that waits read,
and offers a pty (ports["console"]) where mpremote, `provision`, `flash` and `console` talk to the board
through it, as they would on the port itself.  The peripherals are serial adapters wired to the board's
UARTs, served by the emulators (their `--serve DEVICE`): ports[name] is the adapter's device.  Output
events (buzzer, LEDs, relay, display) come from an adapter or pty that carries the board's JSON event
lines (`events`); a board without one has no "events" port.

What only a virtual board offers (power cut by kill, the flash image file, its process) is not here: a
test that needs it is marked virtual-only (tests/vboard/conftest.py).
"""

import threading
import time

import serial

from host_sim.emulators import serial_pty

CONSOLE_TAIL = 8192
READY_PREFIX = b"ready:"


class SerialBoard:
    def __init__(self, port, peripherals=None, baudrate=115200):
        """`port`: the board's console device; `peripherals`: {name: device} of the adapters wired to it
        (scanner, nfc, uplink, gps, driver, events)."""
        self.port = port
        self.peripherals = dict(peripherals or {})
        self.baudrate = baudrate
        self.ports = {}
        self._ser = None
        self._wire = None
        self._fds = []
        self._tail = bytearray()
        self._total = 0
        self._cond = threading.Condition()

    def start(self):
        try:
            self._ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0)
        except (serial.SerialException, OSError) as e:
            raise OSError("cannot open the board's console %s: %s" % (self.port, e)) from None
        master, slave, path = serial_pty.open_raw_pty()
        self._fds = [master, slave]
        self._wire = serial_pty.Wire(self._ser.fileno(), master, name="console")
        self._wire.on_device_bytes = self._from_board
        self.ports = dict(self.peripherals, console=path)
        return self

    def _from_board(self, data):
        with self._cond:
            self._tail += data
            self._total += len(data)
            del self._tail[:-CONSOLE_TAIL]
            self._cond.notify_all()
        return data

    def console_text(self):
        with self._cond:
            return bytes(self._tail).decode("utf-8", "replace")

    def console_mark(self):
        """A position in the console output, for wait_console(since=...)."""
        with self._cond:
            return self._total

    def wait_console(self, needle, timeout=10.0, since=0):
        """Wait until the board printed `needle` (bytes) after position `since` (console_mark())."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle not in self._tail[max(0, since - (self._total - len(self._tail))):]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the board on %s never printed %r; last output:\n%s"
                                       % (self.port, needle, self._tail[-600:].decode("utf-8", "replace")))
                self._cond.wait(left)

    def stop(self):
        if self._wire is not None:
            self._wire.close()
            self._wire = None
        serial_pty.close_fds(*self._fds)
        self._fds = []
        if self._ser is not None:
            self._ser.close()
            self._ser = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

