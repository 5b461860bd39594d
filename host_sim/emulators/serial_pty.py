"""Pseudo-terminals with serial semantics: raw ptys, baud rates read from termios, paced wires.

A pty has no baud rate of its own, but the device side sets one with termios like on a real UART,
and the master can read it back.  A `Wire` joins two pty masters the way a null-modem cable joins two
UARTs, and can pace each direction at the device side's configured rate.
"""

import os
import select
import termios
import threading
import time
import tty

_SPEEDS = {getattr(termios, "B%d" % b): b for b in (
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)}


def open_raw_pty():
    """A new pty in raw mode: (master_fd, slave_fd, slave_path)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def line_baud(fd, default=115200):
    """The baud rate the device side of a pty configured (0 when it never set one)."""
    try:
        return _SPEEDS.get(termios.tcgetattr(fd)[4], default)
    except termios.error:
        return default


def drop_pending_input(fd):
    """Discard bytes queued towards the device: a powered-off UART would never have received them."""
    try:
        termios.tcflush(fd, termios.TCIOFLUSH)
    except termios.error:
        pass


def close_fds(*fds):
    """Close each descriptor given (None: skipped); one already closed is no error."""
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def write_all(fd, data, pacer=None, stopped=None):
    """Write all of `data` to a non-blocking pty master, in 16-byte pieces spaced by `pacer` if given.

    False when the other side is gone (or `stopped()` turned true) before everything was written.
    """
    view = memoryview(data)
    while view:
        if stopped is not None and stopped():
            return False
        n = len(view) if pacer is None else min(len(view), 16)
        if pacer is not None:
            pacer.wait(n)
        try:
            written = os.write(fd, view[:n])
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            return False
        view = view[written:]
    return True


class Pacer:
    """Spaces writes so that bytes leave no faster than baud/10 per second (8N1 framing).

    While the line stays busy, the next byte starts where the previous one ended even if the sleep
    overshot by a little (a UART's shift register does not lose time between back-to-back bytes);
    after a real pause the line starts afresh from now.
    """

    BUSY_SLACK_S = 0.005

    def __init__(self, baud_of):
        self._baud_of = baud_of
        self._free_at = 0.0

    def wait(self, nbytes):
        baud = self._baud_of()
        if not baud:
            return
        now = time.monotonic()
        start = self._free_at if now - self._free_at < self.BUSY_SLACK_S else now
        self._free_at = start + nbytes * 10.0 / baud
        delay = self._free_at - now
        if delay > 0.0005:
            time.sleep(delay)


class Wire:
    """Copy bytes between two pty masters in a background thread, optionally paced at a baud rate.

    `device_fd` is the master whose slave the firmware opened; `host_fd` is the master of the pty a
    host program (emulator, collector, mpremote) opened.  `baud_of()` returns the rate to pace at,
    or None for an unpaced link such as USB CDC.  `on_device_bytes` and `on_host_bytes` let a caller
    watch (and rewrite) the traffic; returning None drops it.
    """

    CHUNK = 64

    def __init__(self, device_fd, host_fd, baud_of=None, name="wire"):
        self.device_fd = device_fd
        self.host_fd = host_fd
        self.name = name
        self.on_device_bytes = None
        self.on_host_bytes = None
        self._stop = False
        self._threads = [
            threading.Thread(target=self._pump, args=(device_fd, host_fd, baud_of, "on_device_bytes"),
                             name=name + ">host", daemon=True),
            threading.Thread(target=self._pump, args=(host_fd, device_fd, baud_of, "on_host_bytes"),
                             name=name + ">device", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, src, dst, baud_of, hook_name):
        """One direction: each direction has its own thread so a paced write never stalls the other."""
        pacer = Pacer(baud_of) if baud_of else None
        while not self._stop:
            try:
                ready, _, _ = select.select([src], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                data = os.read(src, self.CHUNK if pacer else 4096)
            except OSError:
                time.sleep(0.02)  # the other side is closed; a reopen brings it back
                continue
            hook = getattr(self, hook_name)
            if hook is not None:
                data = hook(data)
            if data:
                self._write_all(dst, data, pacer)

    def _write_all(self, dst, data, pacer):
        write_all(dst, data, pacer, lambda: self._stop)

    def close(self):
        self._stop = True
        for t in self._threads:
            t.join(timeout=1)
