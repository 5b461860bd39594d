"""SSD1306 128x64 OLED over I2C, text only: a title and a detail line in framebuf's 8x8 font.

The gate board shows the terminal's state on it (esp32s3_gate.Outputs.display).  The whole screen is
one preallocated buffer sent in a single I2C write, so a redraw allocates nothing.  The build deploys
it beside board.mpy as ssd1306_text.mpy.
"""

import framebuf
from micropython import const

ADDRESS = const(0x3C)  # the module's I2C address (SA0 low)
WIDTH = const(128)
HEIGHT = const(64)
COLUMNS = const(16)  # characters per row in the 8x8 font
ROWS = const(8)
_TITLE_ROWS = const(2)

_CONTROL_COMMAND = const(0x00)  # control byte: a command follows
_CONTROL_DATA = const(0x40)  # control byte: display data follows

# display off, clock, multiplex 64, offset 0, start line 0, charge pump on, horizontal
# addressing, segment remap, COM scan down, COM pins, contrast, precharge, VCOMH, resume, normal, on
_INIT = b"\xae\xd5\x80\xa8\x3f\xd3\x00\x40\x8d\x14\x20\x00\xa1\xc8\xda\x12\x81\xcf\xd9\xf1\xdb\x40\xa4\xa6\xaf"
_WINDOW = b"\x21\x00\x7f\x22\x00\x07"  # columns 0-127, pages 0-7


class TextDisplay:
    """The display on `bus` (anything with writeto(address, buf), like machine.I2C), set up at once."""

    def __init__(self, bus):
        self._bus = bus
        self._cmd = bytearray(2)  # control byte, command byte
        self._cmd[0] = _CONTROL_COMMAND
        self._buf = bytearray(1 + WIDTH * HEIGHT // 8)
        self._buf[0] = _CONTROL_DATA
        self._fb = framebuf.FrameBuffer(memoryview(self._buf)[1:], WIDTH, HEIGHT, framebuf.MONO_VLSB)
        self._commands(_INIT)

    def _commands(self, cmds):
        for c in cmds:
            self._cmd[1] = c
            self._bus.writeto(ADDRESS, self._cmd)

    def show(self, text, detail):
        """Draw text (up to two rows) and, a row below it, detail (what fits), wrapped at 16 columns."""
        fb = self._fb
        fb.fill(0)
        row = _put(fb, text, 0, _TITLE_ROWS)
        _put(fb, detail, row + 1, ROWS - row - 1)
        self._commands(_WINDOW)
        self._bus.writeto(ADDRESS, self._buf)


def _put(fb, s, row, rows):
    """Draw s from `row`, wrapped at 16 columns, on at most `rows` rows; returns the next row."""
    i = 0
    while rows > 0 and i < len(s):
        fb.text(s[i:i + COLUMNS], 0, row * 8, 1)  # characters outside ASCII draw as a block
        i += COLUMNS
        row += 1
        rows -= 1
    return row
