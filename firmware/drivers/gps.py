"""NMEA 0183 from a GPS receiver on a UART: where the bus is, or that the receiver does not know.

Only two sentences matter: RMC (status A/V, latitude, longitude) and GGA (fix quality, latitude,
longitude), from any talker (GP, GN, BD, GL).  Everything else, a bad checksum, a line that is not NMEA
or one longer than MAX_LINE is counted and ignored.  Bytes go into one preallocated line buffer and
fields are found by their comma offsets, so a sentence a second costs no allocation; positions are
integer micro-degrees (no floating point).
"""

import time

MAX_LINE = 96  # NMEA allows 82 characters; a longer line is garbage
MAX_FIELDS = 20

NONE = 0  # no complete line in what was fed
FIX = 1  # a valid position: lat_e6, lon_e6
NO_FIX = 2  # a well-formed sentence saying the receiver has no fix
OTHER = 3  # a well-formed sentence of another kind (GSV, VTG, ...)
BAD_CHECKSUM = 4
GARBAGE = 5  # not an NMEA sentence, or too long

POLL_MS = 100
LOST_MS = 3000  # no valid fix for this long: the receiver is lost, silent or sending garbage


class Nmea:
    def __init__(self):
        self._line = bytearray(MAX_LINE)
        self._n = 0
        self._over = False
        self._commas = [0] * MAX_FIELDS
        self.lat_e6 = 0
        self.lon_e6 = 0
        self.fixes = 0
        self.bad = 0  # bad checksums and garbage lines since start

    def feed(self, data, n):
        """Take `n` bytes of `data`: FIX if a line among them gave a position (lat_e6, lon_e6: the last),
        else the status of the last complete line (NONE: none)."""
        last = NONE
        line = self._line
        for i in range(n):
            b = data[i]
            if b == 13 or b == 10:
                if self._n or self._over:
                    got = GARBAGE if self._over else self.parse(line, self._n)
                    if got == BAD_CHECKSUM or got == GARBAGE:
                        self.bad += 1
                    if last != FIX:
                        last = got
                self._n = 0
                self._over = False
            elif self._n < MAX_LINE:
                line[self._n] = b
                self._n += 1
            else:
                self._over = True
        return last

    def parse(self, buf, n):
        """The status of the sentence in buf[:n] (no line ending); on FIX, lat_e6 and lon_e6 are set."""
        if n < 9 or buf[0] != 36:  # "$"
            return GARBAGE
        star = -1
        x = 0
        commas = self._commas
        nf = 0
        for i in range(1, n):
            b = buf[i]
            if b < 32 or b > 126:
                return GARBAGE
            if b == 42:  # "*"
                star = i
                break
            x ^= b
            if b == 44 and nf < MAX_FIELDS:  # ","
                commas[nf] = i
                nf += 1
        if star < 0 or star + 3 != n:
            return GARBAGE
        hi, lo = _hex(buf[star + 1]), _hex(buf[star + 2])
        if hi < 0 or lo < 0:
            return GARBAGE
        if (hi << 4 | lo) != x:
            return BAD_CHECKSUM
        if nf < 1 or commas[0] != 6:
            return GARBAGE
        kind = bytes(buf[3:6])
        if kind == b"RMC":
            if nf < 7:
                return GARBAGE
            if self._field_byte(buf, 2, nf, star) != 65:  # "A": valid
                return NO_FIX
            return self._position(buf, 3, nf, star)
        if kind == b"GGA":
            if nf < 7:
                return GARBAGE
            q = self._field_byte(buf, 6, nf, star)
            if q < 49 or q > 56:  # quality "0" (or empty): no fix
                return NO_FIX
            return self._position(buf, 2, nf, star)
        return OTHER

    def _span(self, f, nf, star):
        """(start, end) of field f (1-based: the first after the sentence name)."""
        c = self._commas
        return c[f - 1] + 1, (c[f] if f < nf else star)

    def _field_byte(self, buf, f, nf, star):
        a, b = self._span(f, nf, star)
        return buf[a] if b > a else 0

    def _position(self, buf, f, nf, star):
        """Latitude in field f, its hemisphere in f+1, longitude in f+2, its hemisphere in f+3."""
        if f + 3 > nf:
            return GARBAGE
        a, b = self._span(f, nf, star)
        lat = _coord(buf, a, b, 2)
        a, b = self._span(f + 2, nf, star)
        lon = _coord(buf, a, b, 3)
        ns = self._field_byte(buf, f + 1, nf, star)
        ew = self._field_byte(buf, f + 3, nf, star)
        if lat < 0 or lon < 0 or lat > 90000000 or lon > 180000000 or ns not in (78, 83) or ew not in (69, 87):
            return NO_FIX if a == b else GARBAGE  # empty position fields: a receiver without a fix
        self.lat_e6 = -lat if ns == 83 else lat
        self.lon_e6 = -lon if ew == 87 else lon
        self.fixes += 1
        return FIX


def _hex(b):
    if 48 <= b <= 57:
        return b - 48
    if 65 <= b <= 70:
        return b - 55
    if 97 <= b <= 102:
        return b - 87
    return -1


def _coord(buf, a, b, deg_digits):
    """Micro-degrees of "DDMM.MMMMM" (deg_digits D) in buf[a:b]; -1 when malformed."""
    if b - a < deg_digits + 2:
        return -1
    deg = 0
    for i in range(a, a + deg_digits):
        d = buf[i] - 48
        if not 0 <= d <= 9:
            return -1
        deg = deg * 10 + d
    minutes = 0  # minutes x 100000
    scale = 0  # decimals taken (at most 5)
    dot = False
    for i in range(a + deg_digits, b):
        c = buf[i]
        if c == 46 and not dot:
            dot = True
            continue
        d = c - 48
        if not 0 <= d <= 9:
            return -1
        if dot:
            if scale == 5:
                continue
            scale += 1
        minutes = minutes * 10 + d
    while scale < 5:
        minutes *= 10
        scale += 1
    if minutes >= 6000000:
        return -1
    return deg * 1000000 + minutes * 10 // 60


async def run(uart, nmea, on_fix, on_lost):
    """Read the receiver for ever: on_fix(lat_e6, lon_e6) for each valid position, on_lost() after
    LOST_MS without one (silence, garbage, bad checksums or "no fix")."""
    import asyncio

    chunk = bytearray(64)
    good = time.ticks_ms()
    lost = False
    while True:
        n = uart.readinto(chunk)
        if n:
            if nmea.feed(chunk, n) == FIX:
                good = time.ticks_ms()
                lost = False
                on_fix(nmea.lat_e6, nmea.lon_e6)
        if not lost and time.ticks_diff(time.ticks_ms(), good) > LOST_MS:
            lost = True
            on_lost()
        await asyncio.sleep_ms(POLL_MS)
