"""`sim run --trace DIR`: each board's whole console and each cellular terminal's modem UART, both ways, as text.

For finding out why a run went as it did: the virtual board keeps only the last CONSOLE_TAIL bytes of its
console, and a link capture (`--record`) holds the link protocol's bytes, not the AT commands that carry them.
Every line is stamped with the simulated time (the run's clock, local HH:MM:SS) and the wall seconds since the
run began: the clock stands still between taps, and what a jump of it cut short shows in the wall seconds.

    DIR/<terminal>-console.txt   07:02:13 +   12.345 tap #4 accepted 400 fen
    DIR/<terminal>-uart.txt      07:02:13 +   12.351 board> b'AT+QIRD=0,1460\\r'
                                 07:02:13 +   12.352 modem> b'\\r\\n+QIRD: 0\\r\\n\\r\\nOK\\r\\n'
"""

import os
import threading
import time


class _File:
    """One trace file; lines come from the board's or the emulator's threads."""

    def __init__(self, trace, path):
        self.trace = trace
        self.lock = threading.Lock()
        self.f = open(path, "w", encoding="utf-8", errors="replace")

    def line(self, text):
        with self.lock:
            if not self.f.closed:
                self.f.write("%s %s\n" % (self.trace.stamp(), text))

    def close(self):
        with self.lock:
            self.f.close()


class _Console(_File):
    """A board's console, cut into lines as they end."""

    def __init__(self, trace, path):
        super().__init__(trace, path)
        self.partial = bytearray()

    def feed(self, data):
        self.partial += data
        while True:
            end = self.partial.find(b"\n")
            if end < 0:
                return
            text = bytes(self.partial[:end]).rstrip(b"\r").decode("utf-8", "replace")
            del self.partial[: end + 1]
            self.line(text)

    def close(self):
        if self.partial:
            self.line(bytes(self.partial).decode("utf-8", "replace"))
            self.partial.clear()
        super().close()


class _Uart(_File):
    """A modem UART: each chunk as it passed, with who sent it."""

    def chunk(self, direction, data):
        if data:
            self.line("%s> %r" % (direction, bytes(data)))


class Trace:
    """The trace files of one run in `folder`, stamped with `clock` (run.Clock: `.now` in seconds) as local time
    from `midnight`."""

    def __init__(self, folder, clock, midnight):
        self.folder = folder
        self.clock = clock
        self.midnight = midnight
        self.start = time.monotonic()
        self.files = []

    def stamp(self):
        local = int(self.clock.now - self.midnight)
        return "%02d:%02d:%02d +%9.3f" % (local // 3600, local // 60 % 60, local % 60, time.monotonic() - self.start)

    def _add(self, kind, name, suffix):
        f = kind(self, os.path.join(self.folder, "%s-%s.txt" % (name, suffix)))
        self.files.append(f)
        return f

    def console(self, name):
        """The sink for terminal `name`'s console bytes (vboard.VirtualBoard's console_sink)."""
        return self._add(_Console, name, "console").feed

    def uart(self, name):
        """The tap for terminal `name`'s modem UART (the modem emulator's `tap`): tap(direction, data), direction
        "board" (commands, payloads) or "modem" (replies, URCs)."""
        return self._add(_Uart, name, "uart").chunk

    def close(self):
        for f in self.files:
            f.close()
