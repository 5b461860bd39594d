"""A board's output events (buzzer, LEDs, relay, display), one JSON line each, read in the background.

The virtual board writes them to its events pty; the demo, the tests and a person watching a board
all read them the same way: `items` is everything seen so far, and `wait_display()` waits for the
next display change after a given index, so a caller can mark where it stood before a tap.
"""

import json
import threading
import time

import serial


class EventLog:
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
            except (serial.SerialException, OSError, ValueError):  # the board's pty gone for a power cut
                time.sleep(0.05)
                continue
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue  # a line cut by a power cut
                with self._cond:
                    self.items.append(ev)
                    self._cond.notify_all()

    def wait_display(self, start=0, timeout=10, prefixes=None):
        """The first display change at or after index `start` (other than READY, or starting with one
        of `prefixes`); returns (index, event), raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.items)):
                    ev = self.items[i]
                    if ev.get("out") != "display" or ev.get("text") == "READY":
                        continue
                    if prefixes is None or ev.get("text", "").startswith(prefixes):
                        return i, ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no display event; events so far: %r" % self.items[-10:])
                self._cond.wait(left)

    def close(self):
        self._stop = True
        self._thread.join(timeout=1)
        self.ser.close()
