"""protocol/crc.py on both runtimes: check values, agreement with independent CPython references.

References are computed here on CPython with code the module does not use: zlib.crc32 for CRC-32 and
binascii.crc_hqx (the CCITT polynomial 0x1021, not reflected) for both CRC-16s.  The pure-Python
CRC-32 path (the one taken on a port without binascii.crc32) is forced with `_crc32 = None`.
"""

import binascii
import zlib

from hypothesis import strategies as st
from runtimes import draw_examples

CHECK = b"123456789"


# --- bodies --------------------------------------------------------------------------------------


def body_crcs(data, fallback):
    from protocol import crc

    saved = crc._crc32
    if fallback:
        crc._crc32 = None
    try:
        return [crc.crc32(data), crc.crc16_ccitt_false(data), crc.crc16_xmodem(data)]
    finally:
        crc._crc32 = saved


def body_crc32_both_paths(data, split, expected):
    """CRC-32 by the C path and the fallback, whole and continued across a split, against zlib."""
    from protocol import crc

    saved = crc._crc32
    got = []
    try:
        for impl in (saved, None):
            crc._crc32 = impl
            whole = crc.crc32(data)
            chained = crc.crc32(data[split:], crc.crc32(data[:split]))
            from_mv = crc.crc32(memoryview(bytearray(data)))
            got.append((whole, chained, from_mv))
    finally:
        crc._crc32 = saved
    for whole, chained, from_mv in got:
        assert whole == expected, (whole, expected, data)
        assert chained == expected, (chained, expected, split, data)
        assert from_mv == expected, (from_mv, expected)
        assert 0 <= whole <= 0xFFFFFFFF
    return got[1][0]


def body_crc16(data, expected_false, expected_xmodem):
    from protocol import crc

    got = (crc.crc16_ccitt_false(data), crc.crc16_xmodem(data))
    assert got == (expected_false, expected_xmodem), (got, expected_false, expected_xmodem, data)
    return got


# --- check values ----------------------------------------------------------------------------------


def test_check_values(runtime):
    # The catalogue check values of each CRC for the ASCII string "123456789".
    assert runtime.run(body_crcs, CHECK, False) == [0xCBF43926, 0x29B1, 0x31C3]


def test_check_values_pure_python_fallback(runtime):
    assert runtime.run(body_crcs, CHECK, True) == [0xCBF43926, 0x29B1, 0x31C3]


def test_empty_input(runtime):
    # CRC-32 of nothing is 0 (init and xorout cancel); the CRC-16s of nothing are their init values.
    assert runtime.run(body_crcs, b"", False) == [0, 0xFFFF, 0]
    assert runtime.run(body_crcs, b"", True) == [0, 0xFFFF, 0]


def test_every_single_byte(runtime):
    batch = [
        (bytes([b]), zlib.crc32(bytes([b])), binascii.crc_hqx(bytes([b]), 0xFFFF), binascii.crc_hqx(bytes([b]), 0))
        for b in range(256)
    ]
    runtime.run_many(body_crc16, [(d, f, x) for d, _, f, x in batch])
    runtime.run_many(body_crc32_both_paths, [(d, 0, c) for d, c, _, _ in batch])


# --- properties --------------------------------------------------------------------------------------


def test_crc32_agrees_with_zlib(runtime):
    examples = draw_examples(
        st.binary(max_size=600).flatmap(lambda data: st.tuples(st.just(data), st.integers(0, len(data))))
    )
    batch = [(data, split, zlib.crc32(data)) for data, split in examples]
    assert runtime.run_many(body_crc32_both_paths, batch) == [expected for _, _, expected in batch]


def test_crc16_agrees_with_crc_hqx(runtime):
    examples = draw_examples(st.binary(max_size=600))
    batch = [(data, binascii.crc_hqx(data, 0xFFFF), binascii.crc_hqx(data, 0)) for data in examples]
    runtime.run_many(body_crc16, batch)


def test_crc32_detects_any_single_bit_flip(runtime):
    data = bytes(range(64))
    flipped = []
    for bit in range(len(data) * 8):
        mutated = bytearray(data)
        mutated[bit // 8] ^= 1 << (bit % 8)
        flipped.append((bytes(mutated), True))
    results = runtime.run_many(body_crcs, [(data, True)] + flipped)
    original = results[0]
    for got in results[1:]:
        assert got[0] != original[0] and got[1] != original[1] and got[2] != original[2]
