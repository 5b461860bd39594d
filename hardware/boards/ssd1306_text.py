"""SSD1306 128x64 OLED over I2C: four rows of 16-pixel glyphs (Chinese and English), or text in
framebuf's 8x8 font when the board has no glyph table.

The gate board shows the terminal's state on it (esp32s3_gate.Outputs.display).  The whole screen is
one preallocated buffer sent in a single I2C write, so a redraw allocates nothing.  The build deploys
it beside board.mpy as ssd1306_text.mpy, and GLYPHS beside it when the build machine has GNU Unifont
(host_sim/tools/glyphs.py: exactly the characters the firmware shows).

Glyph table (little-endian): b"ZFG1", count u16, then count entries (code point u16, offset u16) in
code-point order, then the bitmaps: offset counts from the first bitmap byte; a glyph 8 pixels wide
has 16 bytes (one a row), a 16-pixel one 32 (two a row), rows top down, most significant bit left.
"""

import framebuf
from micropython import const

ADDRESS = const(0x3C)  # the module's I2C address (SA0 low)
WIDTH = const(128)
HEIGHT = const(64)
COLUMNS = const(16)  # characters per row in the 8x8 font; columns per row in 16-pixel glyphs
ROWS = const(8)
GLYPH_ROWS = const(4)  # rows of 16-pixel glyphs
_TITLE_ROWS = const(2)
GLYPHS = "glyphs.bin"  # beside board.mpy: the board's filesystem root
_MAGIC = b"ZFG1"

_CONTROL_COMMAND = const(0x00)  # control byte: a command follows
_CONTROL_DATA = const(0x40)  # control byte: display data follows

# display off, clock, multiplex 64, offset 0, start line 0, charge pump on, horizontal
# addressing, segment remap, COM scan down, COM pins, contrast, precharge, VCOMH, resume, normal, on
_INIT = b"\xae\xd5\x80\xa8\x3f\xd3\x00\x40\x8d\x14\x20\x00\xa1\xc8\xda\x12\x81\xcf\xd9\xf1\xdb\x40\xa4\xa6\xaf"
_WINDOW = b"\x21\x00\x7f\x22\x00\x07"  # columns 0-127, pages 0-7


class TextDisplay:
    """The display on `bus` (anything with writeto(address, buf), like machine.I2C), set up at once."""

    def __init__(self, bus, glyphs=None):
        """`glyphs`: a glyph table's bytes (None: read GLYPHS if there is one, else the 8x8 font)."""
        self._bus = bus
        self._cmd = bytearray(2)  # control byte, command byte
        self._cmd[0] = _CONTROL_COMMAND
        self._buf = bytearray(1 + WIDTH * HEIGHT // 8)
        self._buf[0] = _CONTROL_DATA
        self._fb = framebuf.FrameBuffer(memoryview(self._buf)[1:], WIDTH, HEIGHT, framebuf.MONO_VLSB)
        self.glyphs = Glyphs(glyphs if glyphs is not None else _read(GLYPHS))
        self._commands(_INIT)

    def _commands(self, cmds):
        for c in cmds:
            self._cmd[1] = c
            self._bus.writeto(ADDRESS, self._cmd)

    def show(self, text, detail, text_zh="", detail_zh=""):
        """With glyphs: the non-empty ones of Chinese title, title, Chinese detail, detail, a row each,
        cut at 16 columns.  Without: text (up to two rows) and, a row below it, detail (what fits),
        wrapped at 16 columns, in the 8x8 font (ASCII only)."""
        fb = self._fb
        fb.fill(0)
        glyphs = self.glyphs
        if glyphs.count:
            row = 0
            for line in (text_zh, text, detail_zh, detail):
                if line and row < GLYPH_ROWS:
                    glyphs.draw(fb, line, row * 16)
                    row += 1
        else:
            row = _put(fb, text, 0, _TITLE_ROWS)
            _put(fb, detail, row + 1, ROWS - row - 1)
        self._commands(_WINDOW)
        self._bus.writeto(ADDRESS, self._buf)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


class Glyphs:
    """A glyph table (see the module's docstring) and a scratch glyph to blit from; b"" is none."""

    def __init__(self, data):
        self.count = 0
        if len(data) >= 6 and data[:4] == _MAGIC:
            self.count = data[4] | data[5] << 8
        self._data = data
        self._bitmaps = 6 + 4 * self.count
        self.size = 0  # bytes of the bitmap find() found last
        self._scratch = bytearray(32)
        self._narrow = framebuf.FrameBuffer(self._scratch, 8, 16, framebuf.MONO_HLSB)
        self._wide = framebuf.FrameBuffer(self._scratch, 16, 16, framebuf.MONO_HLSB)

    def find(self, code):
        """The offset in the table of code point `code`'s bitmap, its length in self.size; -1 if absent.
        (No tuple per glyph: a redraw allocates next to nothing.)"""
        data = self._data
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            at = 6 + 4 * mid
            got = data[at] | data[at + 1] << 8
            if got < code:
                lo = mid + 1
            elif got > code:
                hi = mid
            else:
                start = data[at + 2] | data[at + 3] << 8
                end = len(data) - self._bitmaps if mid + 1 == self.count else data[at + 6] | data[at + 7] << 8
                self.size = end - start
                return self._bitmaps + start
        return -1

    def draw(self, fb, s, y):
        """Draw s at row y of fb from the left edge, glyph by glyph, as far as 128 pixels hold it;
        a character the table lacks is drawn as "?"."""
        x = 0
        scratch = self._scratch
        data = self._data
        for ch in s:
            at = self.find(ord(ch))
            if at < 0:
                at = self.find(0x3F)
                if at < 0:
                    continue
            n = self.size
            width = 16 if n == 32 else 8
            if x + width > WIDTH:
                return
            for i in range(n):
                scratch[i] = data[at + i]
            fb.blit(self._wide if width == 16 else self._narrow, x, y)
            x += width


def _put(fb, s, row, rows):
    """Draw s from `row`, wrapped at 16 columns, on at most `rows` rows; returns the next row."""
    i = 0
    while rows > 0 and i < len(s):
        fb.text(s[i:i + COLUMNS], 0, row * 8, 1)  # characters outside ASCII draw as a block
        i += COLUMNS
        row += 1
        rows -= 1
    return row
