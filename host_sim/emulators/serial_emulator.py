"""What every peripheral emulator shares: one serial line, paced at its line rate, served on a thread.

The line is a new pty by default: the device side (a virtual board, or a driver under test) opens
`port`, its path.  Given `port=PATH`, the emulator opens that existing serial device or pty with
pyserial instead: a USB-serial adapter wired to a real board (`--serve /dev/ttyUSB0`), or a virtual
board's peripheral pty.  A pty has no baud rate, so bytes written to one leave no faster than
`line_rate()` allows; a real serial port paces itself.

A thread reads what the device sends and hands it to `received()`; a subclass keeps only its
device's behaviour.  `close()` (or leaving a `with` block) stops the thread and closes the line.
"""

import os
import select
import threading
import time

import serial

from host_sim.emulators import serial_pty


class SerialEmulator:
    NAME = "serial-emulator"  # the serving thread's name
    POLL_S = 0.05  # longest wait for bytes in one turn of the serving thread
    READ_SIZE = 256
    PACE_INPUT = False  # True: bytes from the device also arrive at the line rate (a UART's receive side)

    def __init__(self, port=None, baud=115200):
        self.baud = baud
        self.ser = None
        self.master = self.slave = None
        self._in_pacer = None
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = None
        if port is None:
            self.master, self.slave, self.port = serial_pty.open_raw_pty()
            self._out_pacer = serial_pty.Pacer(self.line_rate)
            if self.PACE_INPUT:
                self._in_pacer = serial_pty.Pacer(self.line_rate)
        else:
            self.port = port
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=self.POLL_S)

    def line_rate(self):
        """The rate a pty is paced at: the one the device side set with termios, else `baud`."""
        return serial_pty.line_baud(self.slave, default=self.baud)

    def set_line_rate(self, baud):
        """Switch a served serial port to a rate the emulated device changed to (a pty follows
        line_rate() instead)."""
        if self.ser is not None and self.ser.baudrate != baud:
            self.ser.flush()
            self.ser.baudrate = baud

    def fileno(self):
        """The descriptor to select() on for the line (with other inputs, as the modem does)."""
        return self.master if self.ser is None else self.ser.fileno()

    # --- bytes ---

    def read(self):
        """What the device sent, waiting at most POLL_S; b"" when nothing came (or its side is closed)."""
        if self.ser is not None:
            try:
                # what is there as soon as one byte is (a bigger read would wait out the timeout)
                return self.ser.read(max(1, min(self.ser.in_waiting, self.READ_SIZE)))
            except (serial.SerialException, OSError):
                time.sleep(self.POLL_S)
                return b""
        ready, _, _ = select.select([self.master], [], [], self.POLL_S)
        if not ready:
            return b""
        try:
            data = os.read(self.master, self.READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError:
            time.sleep(0.02)  # the device side is closed; a reopen brings it back
            return b""
        if self._in_pacer is not None:
            self._in_pacer.wait(len(data))
        return data

    def write(self, data):
        """Send bytes to the device; False when its side went away before all of them left."""
        with self._write_lock:
            if self.ser is None:
                return serial_pty.write_all(self.master, data, self._out_pacer, self._stopping.is_set)
            try:
                self.ser.write(data)
                self.ser.flush()
            except (serial.SerialException, OSError):
                return False
            return True

    # --- the serving thread ---

    def start(self):
        """Serve the line on a thread (once); returns self, so `Emulator(...).start()` reads well."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.NAME, daemon=True)
            self._thread.start()
        return self

    def _serve(self):
        while not self._stopping.is_set():
            self.poll()

    def poll(self):
        """One turn of the serving thread: wait for bytes from the device and hand them on."""
        data = self.read()
        if data:
            self.received(data)

    def received(self, data):
        """Bytes from the device: what the emulated device does with them."""
        raise NotImplementedError

    def stopping(self):
        """True once close() was called: loops of the subclass end."""
        return self._stopping.is_set()

    def close(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.ser is not None:
            self.ser.close()
        serial_pty.close_fds(self.master, self.slave)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
