"""GM65/GM805-class QR scanner command frames (Hangzhou Grow "zone bit" serial protocol).

Host to module:  7E 00 | type | len | addr hi | addr lo | data (len bytes) | CRC-16/XMODEM hi lo
Module to host:  02 00 | status | len | data (len bytes) | CRC-16/XMODEM hi lo

The CRC covers the bytes after the two header bytes (type .. data, or status .. data).  A module also
accepts AB CD in place of the CRC ("do not check").  Types: 07 read `data[0]` bytes of zone bits from
`addr`, 08 write `data` to `addr`, 09 save all zone bits to the module's flash (addr 0000, data 00).
Status 00 is success; a write or save is answered 02 00 00 01 00 33 31.

Facts relied on (from the GM65/GM805 user manuals as quoted in public drivers and notes; the CRC
placement was checked against published frames, e.g. save = 7E 00 09 01 00 00 00 DE C8, set 9600
baud = 7E 00 08 02 00 2A 39 01 A7 EA, read baud = 7E 00 07 01 00 2A 02 D8 0F, answer 02 00 00 01 00 33 31):
- zone 0x0000 bits 1-0: read mode 00 manual, 01 command-triggered, 10 continuous, 11 induction;
- zone 0x0002 bit 0: software trigger in command mode (cleared by the module after a read);
- zones 0x002A-0x002B: baud-rate divisor, low byte first, = 3 MHz / baud (9600 -> 0x0139,
  115200 -> 0x001A), taking effect right after the write's answer;
- zone 0x0060: output tail (terminator).  The tail field is taken here as bits 6-5: 00 CR, 01 CR LF,
  10 TAB, 11 none — this bit position is not confirmed against a datasheet; check on a real module.
"""

from protocol import crc

CMD_HEAD = b"\x7e\x00"
ANS_HEAD = b"\x02\x00"
NO_CRC = b"\xab\xcd"

T_READ = 0x07
T_WRITE = 0x08
T_SAVE = 0x09

ZONE_MODE = 0x0000
ZONE_TRIGGER = 0x0002
ZONE_BAUD = 0x002A
ZONE_TAIL = 0x0060

MODE_MASK = 0x03
MODE_MANUAL = 0
MODE_COMMAND = 1
MODE_CONTINUOUS = 2
MODE_INDUCTION = 3

TAIL_SHIFT = 5
TAIL_MASK = 0x60
TAIL_CR = 0
TAIL_CRLF = 1
TAIL_TAB = 2
TAIL_NONE = 3
TAILS = (b"\r", b"\r\n", b"\t", b"")

BAUD_CLOCK = 3000000
BAUDS = (1200, 4800, 9600, 14400, 19200, 38400, 57600, 115200)
MAX_DATA = 64


class Gm65Error(ValueError):
    pass


def baud_value(baud):
    """The two zone bytes (low first) that select `baud`."""
    if baud not in BAUDS:
        raise Gm65Error("baud rate %d not offered by the module" % baud)
    v = (BAUD_CLOCK + baud // 2) // baud
    return bytes([v & 0xFF, v >> 8])


def baud_of(value):
    """The baud rate two zone bytes select, or None for a value the table does not have."""
    if len(value) != 2:
        return None
    v = value[0] | value[1] << 8
    for b in BAUDS:
        if (BAUD_CLOCK + b // 2) // b == v:
            return b
    return None


def _crc(body):
    c = crc.crc16_xmodem(body)
    return bytes([c >> 8, c & 0xFF])


def command(ftype, addr, data):
    if not 0 < len(data) <= MAX_DATA:
        raise Gm65Error("command data of %d bytes" % len(data))
    body = bytes([ftype, len(data), addr >> 8 & 0xFF, addr & 0xFF]) + bytes(data)
    return CMD_HEAD + body + _crc(body)


def read(addr, count=1):
    return command(T_READ, addr, bytes([count]))


def write(addr, data):
    return command(T_WRITE, addr, data)


def save():
    return command(T_SAVE, 0, b"\x00")


def answer(data=b"\x00", status=0):
    body = bytes([status, len(data)]) + bytes(data)
    return ANS_HEAD + body + _crc(body)


class FrameReader:
    """Finds frames in a byte stream, resynchronising after noise.

    `commands` True reads host->module frames (type, addr, data) and honours the AB CD wildcard;
    False reads module->host answers (status, data).  Bytes before a header, and a candidate whose
    CRC fails, are dropped one byte at a time, so a frame that follows noise is still found.
    """

    def __init__(self, commands):
        self.commands = commands
        self.head = CMD_HEAD if commands else ANS_HEAD
        self.fixed = 6 if commands else 4  # header + type/status + len (+ address)
        self.buf = bytearray()
        self.dropped = 0

    def feed(self, data):
        """Frames completed by `data`, oldest first."""
        self.buf += data
        out = []
        while True:
            frame = self._next()
            if frame is None:
                return out
            out.append(frame)

    def _drop(self, n):
        self.dropped += n
        self.buf = self.buf[n:]

    def _next(self):
        buf = self.buf
        while True:
            i = buf.find(self.head)
            if i < 0:  # keep a trailing first header byte
                keep = 1 if buf and buf[len(buf) - 1] == self.head[0] else 0
                self._drop(len(buf) - keep)
                return None
            if i:
                self._drop(i)
                buf = self.buf
            if len(buf) < self.fixed:
                return None
            n = buf[3]
            if n > MAX_DATA or (self.commands and n == 0):
                self._drop(1)
                buf = self.buf
                continue
            end = self.fixed + n + 2
            if len(buf) < end:
                return None
            body = bytes(buf[2 : end - 2])
            check = bytes(buf[end - 2 : end])
            if check == _crc(body) or (self.commands and check == NO_CRC):
                self._drop(end)
                self.dropped -= end
                if self.commands:
                    return buf[2], buf[4] << 8 | buf[5], body[4:]
                return buf[2], body[2:]
            self._drop(1)
            buf = self.buf
