"""protocol/gm65.py on both runtimes: the published GM65 frames byte for byte, the baud table, and
the frame reader's resynchronisation after noise (property test, replayed on MicroPython).
"""

import binascii

from hypothesis import strategies as st
from runtimes import draw_examples


def ref_xmodem(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def body_frames():
    from protocol import gm65

    return [gm65.save(), gm65.write(gm65.ZONE_BAUD, gm65.baud_value(9600)), gm65.read(gm65.ZONE_BAUD, 2),
            gm65.answer(), gm65.write(gm65.ZONE_MODE, b"\x02"), [gm65.baud_value(b) for b in gm65.BAUDS],
            [gm65.baud_of(gm65.baud_value(b)) for b in gm65.BAUDS], gm65.baud_of(b"\x00\x00")]


def body_read_stream(chunks, commands):
    from protocol import gm65

    r = gm65.FrameReader(commands)
    out = []
    for c in chunks:
        out += [list(f) for f in r.feed(c)]
    return out, r.dropped


def body_errors():
    from protocol import gm65

    out = []
    for f in (lambda: gm65.baud_value(12345), lambda: gm65.write(0, b""), lambda: gm65.write(0, bytes(65))):
        try:
            f()
            out.append("no error")
        except gm65.Gm65Error as e:
            out.append(str(e))
    return out


def test_published_frames(runtime):
    save, baud9600, read_baud, ok, continuous, values, back, unknown = runtime.run(body_frames)
    assert save == bytes.fromhex("7E000901000000DEC8")
    assert baud9600 == bytes.fromhex("7E000802002A3901A7EA")
    assert read_baud == bytes.fromhex("7E000701002A02D80F")
    assert ok == bytes.fromhex("02000001003331")
    assert continuous[:7] == bytes.fromhex("7E00080100 0002".replace(" ", ""))
    assert continuous[7:] == ref_xmodem(continuous[2:7]).to_bytes(2, "big")
    assert values[2] == b"\x39\x01" and values[7] == b"\x1a\x00"  # 9600, 115200
    assert back == [1200, 4800, 9600, 14400, 19200, 38400, 57600, 115200] and unknown is None


def test_errors(runtime):
    got = runtime.run(body_errors)
    assert "12345" in got[0] and "0 bytes" in got[1] and "65 bytes" in got[2]


def ans(status, data):
    body = bytes([status, len(data)]) + data
    return b"\x02\x00" + body + ref_xmodem(body).to_bytes(2, "big")


def cmd(t, addr, data, wildcard=False):
    body = bytes([t, len(data), addr >> 8, addr & 0xFF]) + data
    return b"\x7e\x00" + body + (b"\xab\xcd" if wildcard else ref_xmodem(body).to_bytes(2, "big"))


def test_commands_with_wildcard_and_split_chunks(runtime):
    stream = cmd(8, 0x2A, b"\x1a\x00") + b"\x7e\x7e\x00" + cmd(7, 0, b"\x01", wildcard=True) + cmd(9, 0, b"\x00")
    chunks = [stream[i : i + 3] for i in range(0, len(stream), 3)]
    got, dropped = runtime.run(body_read_stream, chunks, True)
    assert got == [[8, 0x2A, b"\x1a\x00"], [7, 0, b"\x01"], [9, 0, b"\x00"]] and dropped == 3
    bad = cmd(8, 0, b"\x02")[:-1] + b"\x00"  # wrong CRC: refused, the next frame still found
    got, _ = runtime.run(body_read_stream, [bad + cmd(8, 0, b"\x03")], True)
    assert got == [[8, 0, b"\x03"]]


frame_st = st.tuples(st.integers(0, 3), st.binary(min_size=1, max_size=8))
noise_st = st.binary(max_size=12).map(lambda b: b.replace(b"\x02", b"\x03"))


def test_resync_after_noise_property(runtime):
    examples = draw_examples(st.tuples(st.lists(st.tuples(noise_st, frame_st), max_size=5), st.integers(1, 9)))
    cases, wants = [], []
    for parts, step in examples:
        stream = b"".join(noise + ans(s, d) for noise, (s, d) in parts)
        cases.append(([stream[i : i + step] for i in range(0, len(stream), step)], False))
        wants.append([[s, d] for _, (s, d) in parts])
    results = runtime.run_many(body_read_stream, cases)
    for want, (got, _), case in zip(wants, results, cases):
        assert got == want, (binascii.hexlify(b"".join(case[0])), got)


def test_arbitrary_noise_never_raises(runtime):
    examples = draw_examples(st.lists(st.binary(max_size=40), max_size=6))
    for commands in (True, False):
        results = runtime.run_many(body_read_stream, [(chunks, commands) for chunks in examples])
        for chunks, (got, dropped) in zip(examples, results):
            assert dropped <= len(b"".join(chunks))
            for frame in got:  # whatever was accepted carried a correct CRC (or the wildcard)
                assert frame[0] <= 255
