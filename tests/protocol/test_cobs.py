"""protocol/cobs.py on both runtimes: round trip, no zero in the output, overhead bound, malformed input.

The overhead bound is the one COBS promises and the module documents: at most one byte per 254 plus one.
Known encodings come from the COBS paper's rules (a code byte = distance to the next zero, 0xFF = 254
data bytes and no zero), written out by hand here.
"""

from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_round_trip(data):
    from protocol import cobs

    encoded = cobs.encode(data)
    assert 0 not in encoded, encoded
    bound = len(data) + len(data) // 254 + 1
    assert len(encoded) <= bound, (len(encoded), bound)
    assert cobs.max_encoded_len(len(data)) >= len(encoded)
    decoded = cobs.decode(encoded)
    assert decoded == data, (decoded, data)
    # The preallocated-buffer path gives the same bytes.
    dst = bytearray(cobs.max_encoded_len(len(data)))
    n = cobs.encode_into(data, dst)
    assert bytes(dst[:n]) == encoded
    out = bytearray(len(data))
    m = cobs.decode_into(memoryview(dst)[:n], out)
    assert bytes(out[:m]) == data
    return encoded


def body_decode_only_cobs_error(data):
    """Decoding arbitrary bytes returns bytes or raises CobsError; nothing else escapes."""
    from protocol import cobs

    try:
        out = cobs.decode(data)
    except cobs.CobsError:
        return None
    assert isinstance(out, bytes)
    return out


def body_decode_into_small_buffer(encoded, size):
    from protocol import cobs

    try:
        n = cobs.decode_into(encoded, bytearray(size))
    except cobs.CobsError:
        return "CobsError"
    return n


def body_cobs_error_is_value_error():
    from protocol import cobs

    return issubclass(cobs.CobsError, ValueError)


# --- known encodings ---------------------------------------------------------------------------------

KNOWN = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255)) + b"\x01"),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
]


def test_known_encodings(runtime):
    got = runtime.run_many(body_round_trip, [(data,) for data, _ in KNOWN])
    assert got == [encoded for _, encoded in KNOWN]


def test_round_trip_property(runtime):
    # Biased towards zeros and long non-zero runs, where the 254-byte block boundary matters.
    byte = st.one_of(st.just(0), st.integers(1, 255))
    data = st.one_of(
        st.binary(max_size=700),
        st.lists(byte, max_size=700).map(bytes),
        st.integers(0, 800).map(lambda n: bytes((i % 255) + 1 for i in range(n))),
        st.tuples(st.integers(0, 600), st.integers(0, 600)).map(lambda ab: b"\x07" * ab[0] + b"\x00" + b"\x09" * ab[1]),
    )
    batch = [(d,) for d in draw_examples(data)]
    got = runtime.run_many(body_round_trip, batch)
    assert len(got) == len(batch)


def test_worst_case_overhead_is_the_bound(runtime):
    # All non-zero data needs one extra code byte per 254 bytes: the bound is reached, not only met.
    for n in (253, 254, 255, 508, 509, 1000):
        data = b"\x5a" * n
        encoded = runtime.run(body_round_trip, data)
        assert len(encoded) in (n + n // 254 + 1, n + (n + 253) // 254)


def test_malformed_raises_cobs_error(runtime):
    bad = [
        b"\x00",  # a zero where a code byte should be
        b"\x03\x11\x00",  # a zero inside a block
        b"\x05\x11\x22",  # block longer than the frame
        b"\xff" + b"\x01" * 100,  # 0xFF block cut short
        b"\x02\x11\x00\x01",  # zero code byte after a block
    ]
    assert runtime.run_many(body_decode_only_cobs_error, [(b,) for b in bad]) == [None] * len(bad)
    assert runtime.run(body_cobs_error_is_value_error) is True


def test_decode_into_refuses_to_overflow_the_buffer(runtime):
    # encoded form of 10 x 0x33 and of 9 zeros: both decode to 10 / 9 bytes.
    ones = b"\x0b" + b"\x33" * 10
    zeros = b"\x01" * 10
    assert runtime.run_many(body_decode_into_small_buffer, [(ones, 10), (ones, 9), (zeros, 9), (zeros, 8)]) == [
        10,
        "CobsError",
        9,
        "CobsError",
    ]


def test_random_input_never_raises_anything_but_cobs_error(runtime):
    data = st.one_of(
        st.binary(max_size=400),
        st.lists(st.sampled_from([0, 1, 2, 3, 0xFE, 0xFF, 0x41]), max_size=400).map(bytes),
    )
    batch = [(d,) for d in draw_examples(data)]
    results = runtime.run_many(body_decode_only_cobs_error, batch)
    assert any(r is not None for r in results), "the fuzz set should contain some valid encodings"
    assert any(r is None for r in results), "the fuzz set should contain some malformed input"
