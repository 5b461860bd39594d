"""hardware/boards/ssd1306_text.py inside MicroPython over a fake I2C bus that records every write:
the set-up commands, the window command before each redraw, and a screen whose rows hold the text
where show() promises it (title on up to two rows, detail a row below, 16 columns a row).

The driver needs framebuf, which CPython lacks, so the bodies run on the MicroPython runtime only;
they skip when the port has no framebuf.
"""

import pytest


def body_show(text, detail):
    """The writes of one TextDisplay set-up and one show(); the screen as rows of text, read back by
    drawing each candidate row with framebuf and comparing pages."""
    try:
        import framebuf
    except ImportError:
        return "no framebuf"
    from hardware.boards import ssd1306_text as oled

    class Bus:
        def __init__(self):
            self.writes = []

        def writeto(self, addr, buf):
            self.writes.append((addr, bytes(buf)))

    bus = Bus()
    display = oled.TextDisplay(bus)
    setup = bus.writes
    bus.writes = []
    display.show(text, detail)
    shown = bus.writes
    screen = shown[-1][1]

    def page(s):
        """Page bytes (128 columns) of s drawn alone at the top of a blank 128x8 framebuffer."""
        buf = bytearray(oled.WIDTH)
        framebuf.FrameBuffer(buf, oled.WIDTH, 8, framebuf.MONO_VLSB).text(s, 0, 0, 1)
        return bytes(buf)

    pages = [screen[1 + i * oled.WIDTH:1 + (i + 1) * oled.WIDTH] for i in range(oled.ROWS)]
    return {
        "addresses": sorted(set(a for a, _ in setup + shown)),
        "setup": [w for _, w in setup],
        "window": [w for _, w in shown[:-1]],
        "screen_len": len(screen),
        "control": screen[0],
        "blank_rows": [i for i, p in enumerate(pages) if p == bytes(oled.WIDTH)],
        "pages": pages,
        "expected": {s: page(s) for s in ("HELLO", "PAID 2.00", "0123456789ABCDEF", "GHIJKLMNOPQRSTUV")},
    }


def show(runtime, text, detail):
    """body_show on MicroPython; skips on the other runtimes and on a port without framebuf."""
    if runtime.name != "micropython":
        pytest.skip("display driver: needs MicroPython's framebuf")
    got = runtime.run(body_show, text, detail)
    if got == "no framebuf":
        pytest.skip("this MicroPython has no framebuf")
    return got


def test_setup_sends_the_init_commands_one_by_one(runtime):
    got = show(runtime, "HELLO", "")
    assert got["addresses"] == [0x3C]
    init = bytes.fromhex("aed580a83fd300408d142000a1c8da1281cfd9f1db40a4a6af")
    assert got["setup"] == [bytes([0x00, c]) for c in init]  # control byte 0x00: a command follows
    assert got["window"] == [bytes([0x00, c]) for c in bytes.fromhex("21007f220007")]  # columns 0-127, pages 0-7


def test_show_writes_the_whole_screen_with_title_and_detail_rows(runtime):
    got = show(runtime, "HELLO", "PAID 2.00")
    assert got["screen_len"] == 1 + 128 * 64 // 8 and got["control"] == 0x40  # 0x40: display data follows
    assert got["pages"][0] == got["expected"]["HELLO"]
    assert got["pages"][2] == got["expected"]["PAID 2.00"]  # one blank row between title and detail
    assert got["blank_rows"] == [1, 3, 4, 5, 6, 7]


def test_long_text_wraps_at_16_columns_and_the_title_keeps_two_rows(runtime):
    title = "0123456789ABCDEF" + "GHIJKLMNOPQRSTUV" + "cut off"
    detail = "0123456789ABCDEF" * 6
    got = show(runtime, title, detail)
    assert got["pages"][0] == got["expected"]["0123456789ABCDEF"]
    assert got["pages"][1] == got["expected"]["GHIJKLMNOPQRSTUV"]  # a third title row is cut off
    assert got["blank_rows"] == [2]
    assert all(got["pages"][r] == got["expected"]["0123456789ABCDEF"] for r in range(3, 8))  # 5 of 6 rows fit


def body_show_glyphs(table, lines):
    """The screen bytes (after the control byte) of show() with a glyph table; "no framebuf" without one."""
    try:
        import framebuf  # noqa: F401
    except ImportError:
        return "no framebuf"
    from hardware.boards import ssd1306_text as oled

    class Bus:
        def writeto(self, addr, buf):
            self.last = bytes(buf)

    bus = Bus()
    display = oled.TextDisplay(bus, table)
    display.show(lines[1], lines[3], lines[0], lines[2])
    return bus.last[1:]


def expected_screen(bitmaps, rows):
    """The MONO_VLSB screen (8 pages of 128 columns) with `rows` drawn from Unifont bitmaps, 16 pixels a row."""
    screen = bytearray(128 * 8)
    for r, line in enumerate(rows):
        x = 0
        for ch in line:
            bits = bitmaps[ord(ch)]
            width = 16 if len(bits) == 32 else 8
            if x + width > 128:
                break
            per_row = width // 8
            for gy in range(16):
                row_bits = int.from_bytes(bits[gy * per_row:(gy + 1) * per_row], "big")
                for gx in range(width):
                    if row_bits >> (width - 1 - gx) & 1:
                        y = r * 16 + gy
                        screen[(y // 8) * 128 + x + gx] |= 1 << (y % 8)
            x += width
    return bytes(screen)


def test_glyphs_draw_chinese_and_english_rows_from_the_build_table(runtime):
    from host_sim.tools import glyphs

    if runtime.name != "micropython":
        pytest.skip("display driver: needs MicroPython's framebuf")
    path = glyphs.unifont_path()
    if path is None:
        pytest.skip("GNU Unifont is not installed (Debian package unifont): no glyph table to draw with")
    table, missing = glyphs.build_table(path)
    assert missing == []
    bitmaps = glyphs.read_hex(path, glyphs.characters())
    lines = ["已付款 1.50元", "PAID 1.50", "立减 0.50", "-0.50 #000001"]
    got = runtime.run(body_show_glyphs, table, lines)
    if got == "no framebuf":
        pytest.skip("this MicroPython has no framebuf")
    assert got == expected_screen(bitmaps, lines)
    # empty rows close up; a line past 16 columns is cut where a glyph no longer fits
    long_en = "0123456789ABCDEFGHIJ"
    got = runtime.run(body_show_glyphs, table, ["", "DECLINED", "", long_en])
    assert got == expected_screen(bitmaps, ["DECLINED", long_en[:16]])
    assert any(got[3 * 128:4 * 128])  # the second row (pages 2 and 3) holds the detail
