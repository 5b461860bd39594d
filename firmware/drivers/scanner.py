"""GM65/GM805-class serial QR scanner: decoded codes arrive as text lines ended by CR and/or LF.

Lines are collected into one preallocated buffer.  A line longer than the buffer is not an error to
crash on: the driver discards up to the next terminator and reports TOO_LONG, so the terminal can show
a rejection and carry on.  A module answer frame (02 00 ...) that arrives where a line should start
(a late answer to a configuration command) is dropped instead of being glued to the next code; bytes
that only look like one (header, length or CRC wrong) are kept as line data.

At boot `setup()` raises the module's baud rate (protocol/gm65.py has the command frames): a
200-character payment code takes ~0.2 s on the wire at 9600 baud, ~0.02 s at 115200.  The new rate
is not saved to the module's flash, so a power-cycled module comes back at 9600 and the next boot
raises it again; after a warm reboot of the board alone the module is found at the fast rate.
"""

import asyncio

from protocol import crc, gm65

LINE = 0
TOO_LONG = 1

MAX_LINE = 512
DEFAULT_BAUD = 9600  # the modules' factory setting
FAST_BAUD = 115200
ANSWER_MS = 150
_CR = 13
_LF = 10
_STX = 2
_ANSWER_MAX = 8  # data bytes in the answers this driver asks for


class Scanner:
    def __init__(self, uart, max_line=MAX_LINE):
        self._uart = uart
        self._stream = asyncio.StreamReader(uart)
        self._chunk = bytearray(64)
        self._chunk_len = 0
        self._chunk_pos = 0
        self._line = bytearray(max_line)
        self._n = 0
        self._overlong = False
        self._ans = bytearray(6 + _ANSWER_MAX)  # a candidate answer frame seen at a line start
        self._ans_n = 0
        self._replay = b""  # bytes of a candidate that was not an answer, to look at again
        self._replay_pos = 0
        self.baud = DEFAULT_BAUD
        self.heard = 0  # codes and answer frames received: a sign of life for firmware/health.py
        self._probe = gm65.read(gm65.ZONE_BAUD, 2)

    async def read_line(self):
        """Next (LINE, bytes) or (TOO_LONG, None); empty lines (CR LF pairs) are skipped."""
        while True:
            while self._replay_pos < len(self._replay):
                b = self._replay[self._replay_pos]
                self._replay_pos += 1
                result = self._byte(b)
                if result is not None:
                    return result
            while self._chunk_pos < self._chunk_len:
                b = self._chunk[self._chunk_pos]
                self._chunk_pos += 1
                result = self._byte(b)
                if result is not None:
                    return result
                if self._replay_pos < len(self._replay):
                    break  # bytes to look at again come before the rest of the chunk
            if self._replay_pos < len(self._replay):
                continue
            n = await self._stream.readinto(self._chunk)
            self._chunk_len = n or 0
            self._chunk_pos = 0

    def _byte(self, b):
        if self._ans_n:
            return self._answer_byte(b)
        if b == _CR or b == _LF:
            return self._finish()
        if b == _STX and self._n == 0 and not self._overlong:
            self._ans[0] = b
            self._ans_n = 1
        else:
            self._add(b)
        return None

    def _add(self, b):
        if self._n < len(self._line):
            self._line[self._n] = b
            self._n += 1
        else:
            self._overlong = True

    def _answer_byte(self, b):
        """Collect a candidate answer frame; one that fails its header or CRC check is line data."""
        ans = self._ans
        n = self._ans_n
        ans[n] = b
        n += 1
        self._ans_n = n
        if (n == 2 and b != 0) or (n == 4 and b > _ANSWER_MAX):
            return self._not_an_answer()
        if n >= 4 and n == 6 + ans[3]:
            c = crc.crc16_xmodem(memoryview(ans)[2 : n - 2])
            if ans[n - 2] != c >> 8 or ans[n - 1] != c & 0xFF:
                return self._not_an_answer()
            self._ans_n = 0  # a real answer frame: dropped
            self.heard += 1
        return None

    def _not_an_answer(self):
        # The STX becomes data; the bytes after it are looked at again, ahead of the rest.
        rest = bytes(memoryview(self._ans)[1 : self._ans_n]) + bytes(self._replay[self._replay_pos :])
        self._ans_n = 0
        self._replay = rest
        self._replay_pos = 0
        self._add(_STX)
        return None

    def _finish(self):
        n, overlong = self._n, self._overlong
        self._n = 0
        self._overlong = False
        if n or overlong:
            self.heard += 1
        if overlong:
            return TOO_LONG, None
        if n == 0:
            return None
        return LINE, bytes(memoryview(self._line)[:n])

    def busy(self):
        """True while a code (or an answer frame) is half received."""
        return self._n > 0 or self._overlong or self._ans_n > 0

    def probe(self):
        """Ask the module for its baud zone without waiting: read_line() drops the answer and counts it
        in `heard`.  Only between codes (see busy()), so the answer cannot land inside one."""
        self._uart.write(self._probe)

    # --- configuration (boot time only: bytes that are not answers are dropped meanwhile) ---

    async def command(self, frame, timeout_ms=ANSWER_MS):
        """Send one command frame; the answer's (status, data), or None when none came in time."""
        reader = gm65.FrameReader(False)
        self._uart.write(frame)
        buf = self._chunk
        left = timeout_ms
        while left > 0:
            step = min(left, 20)
            try:
                n = await asyncio.wait_for_ms(self._stream.readinto(buf), step)
            except asyncio.TimeoutError:
                n = 0
            left -= step
            if n:
                frames = reader.feed(bytes(memoryview(buf)[:n]))
                if frames:
                    return frames[0]
        return None

    async def _set_baud(self, baud):
        self._uart.init(baudrate=baud)
        self.baud = baud

    async def setup(self, baud=FAST_BAUD, mode=None, tail=None):
        """Find the module at 9600 or `baud`, apply `mode`/`tail` if given, and move it to `baud`.

        Returns the baud rate in use, or None when the module never answered (then the UART stays
        at 9600, where a module that only sends lines is still read)."""
        self._chunk_len = self._chunk_pos = 0
        found = None
        for rate in (DEFAULT_BAUD, baud):
            if rate != self.baud:
                await self._set_baud(rate)
            got = await self.command(self._probe)
            if got is not None and got[0] == 0:
                found = rate
                break
        if found is None:
            await self._set_baud(DEFAULT_BAUD)
            return None
        if mode is not None:
            await self._update(gm65.ZONE_MODE, gm65.MODE_MASK, mode)
        if tail is not None:
            await self._update(gm65.ZONE_TAIL, gm65.TAIL_MASK, tail << gm65.TAIL_SHIFT)
        if found != baud:
            got = await self.command(gm65.write(gm65.ZONE_BAUD, gm65.baud_value(baud)))
            if got is None or got[0] != 0:
                return found
            await self._set_baud(baud)  # the module switches right after its answer
            got = await self.command(self._probe)
            if got is None:  # it did not follow: go back to where it answered
                await self._set_baud(found)
                return found
        return baud

    async def _update(self, zone, mask, value):
        got = await self.command(gm65.read(zone, 1))
        if got is None or got[0] != 0 or len(got[1]) != 1:
            return False
        new = (got[1][0] & ~mask) | (value & mask)
        if new != got[1][0]:
            got = await self.command(gm65.write(zone, bytes([new])))
            return got is not None and got[0] == 0
        return True
