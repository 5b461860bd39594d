"""The display's glyph table: GNU Unifont's 16-pixel glyphs of exactly the characters the firmware shows.

The characters are printable ASCII and every character of every string constant in firmware/feedback.py
(where the firmware's screen texts live), so a text added there is in the next build.  Unifont is the
Debian package `unifont` (/usr/share/unifont/unifont.hex, one glyph a line: "4E00:" and 32 hex digits for
8x16 or 64 for 16x16); ZF_UNIFONT names another copy.  The format is the one hardware/boards/ssd1306_text.py reads.
"""

import ast
import os
import struct

from host_sim.paths import ROOT

UNIFONT = "/usr/share/unifont/unifont.hex"
MAGIC = b"ZFG1"


def unifont_path():
    """The Unifont .hex file to read, or None when this machine has none."""
    path = os.environ.get("ZF_UNIFONT", UNIFONT)
    return path if os.path.exists(path) else None


FEEDBACK = os.path.join(ROOT, "firmware", "feedback.py")


def texts(path=FEEDBACK):
    """Every string constant of a module's source (docstrings included: a few glyphs more, none missed)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def characters():
    """The code points the firmware may show, sorted: printable ASCII and those of its texts."""
    chars = set(range(0x20, 0x7F))
    for text in texts():
        chars.update(ord(ch) for ch in text if ord(ch) >= 0x7F and ord(ch) < 0x10000 and ch.isprintable())
    return sorted(chars)


def read_hex(path, wanted):
    """{code point: bitmap bytes} of the `wanted` code points found in a Unifont .hex file."""
    wanted = set(wanted)
    out = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            code, _, bits = line.strip().partition(":")
            if not bits:
                continue
            cp = int(code, 16)
            if cp in wanted and len(bits) in (32, 64):
                out[cp] = bytes.fromhex(bits)
    return out


def table(glyphs):
    """The glyph table of {code point: 16- or 32-byte bitmap}, code points below 0x10000."""
    codes = sorted(glyphs)
    index = bytearray(MAGIC + struct.pack("<H", len(codes)))
    bitmaps = bytearray()
    for cp in codes:
        index += struct.pack("<HH", cp, len(bitmaps))
        bitmaps += glyphs[cp]
    return bytes(index + bitmaps)


def build_table(path=None):
    """(table bytes, code points the font lacks) for the firmware's characters; None without Unifont."""
    path = path or unifont_path()
    if path is None:
        return None
    wanted = characters()
    glyphs = read_hex(path, wanted)
    return table(glyphs), [cp for cp in wanted if cp not in glyphs]
