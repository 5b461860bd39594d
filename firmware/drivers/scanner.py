"""GM65/GM805-class serial QR scanner: decoded codes arrive as text lines ended by CR and/or LF.

Lines are collected into one preallocated buffer.  A line longer than the buffer is not an error to
crash on: the driver discards up to the next terminator and reports TOO_LONG, so the terminal can show
a rejection and carry on.
"""

import asyncio

LINE = 0
TOO_LONG = 1

MAX_LINE = 512
_CR = 13
_LF = 10


class Scanner:
    def __init__(self, uart, max_line=MAX_LINE):
        self._stream = asyncio.StreamReader(uart)
        self._chunk = bytearray(64)
        self._chunk_len = 0
        self._chunk_pos = 0
        self._line = bytearray(max_line)
        self._n = 0
        self._overlong = False

    async def read_line(self):
        """Next (LINE, bytes) or (TOO_LONG, None); empty lines (CR LF pairs) are skipped."""
        while True:
            while self._chunk_pos < self._chunk_len:
                b = self._chunk[self._chunk_pos]
                self._chunk_pos += 1
                if b == _CR or b == _LF:
                    result = self._finish()
                    if result is not None:
                        return result
                elif self._n < len(self._line):
                    self._line[self._n] = b
                    self._n += 1
                else:
                    self._overlong = True
            n = await self._stream.readinto(self._chunk)
            self._chunk_len = n or 0
            self._chunk_pos = 0

    def _finish(self):
        n, overlong = self._n, self._overlong
        self._n = 0
        self._overlong = False
        if overlong:
            return TOO_LONG, None
        if n == 0:
            return None
        return LINE, bytes(memoryview(self._line)[:n])
