"""protocol/frame.py on both runtimes: framing, arbitrary chunking, noise, corruption, size limits.

Streams are built here on CPython (frames from protocol.frame, checked against the documented format:
COBS(payload + CRC-32 LE) + 0x00 with zlib's CRC) and fed to a FrameReader inside each runtime in the
chunks hypothesis chose.  A corrupted frame must be dropped and counted, never delivered as some other
payload, and never raise; the reader must pick up again at the next delimiter.
"""

import struct
import zlib

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import cobs, frame

# --- bodies --------------------------------------------------------------------------------------


def body_feed(stream, cuts, max_payload):
    """Feed `stream` to a new FrameReader in the pieces `cuts` delimits: (payloads, errors)."""
    from protocol import frame

    reader = frame.FrameReader() if max_payload is None else frame.FrameReader(max_payload)
    out = []
    start = 0
    for cut in list(cuts) + [len(stream)]:
        got = reader.feed(stream[start:cut])
        assert isinstance(got, list)
        out.extend(got)
        start = cut
    for p in out:
        assert isinstance(p, bytes)
    return out, reader.errors


def body_encode(payloads):
    from protocol import frame

    return [frame.encode(p) for p in payloads]


def body_encode_limit(size):
    from protocol import frame

    try:
        return len(frame.encode(b"\xa5" * size))
    except ValueError:
        return "ValueError"


def body_max_payload():
    from protocol import frame

    return frame.MAX_PAYLOAD


# --- helpers (CPython side) -------------------------------------------------------------------------


def expected_frame(payload):
    """The documented wire form, built without protocol.frame."""
    return cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


def cuts_for(stream_len, seeds):
    return sorted({s % (stream_len + 1) for s in seeds})


payloads4 = st.lists(
    st.one_of(st.binary(max_size=40), st.binary(min_size=200, max_size=480)),
    min_size=4,
    max_size=4,
    unique=True,
)
cut_seeds = st.one_of(st.lists(st.integers(0, 10**6), max_size=12), st.just(None))


def with_cuts(stream, seeds):
    """Cut points: hypothesis' choice, or every byte on its own."""
    if seeds is None:
        return list(range(1, len(stream)))
    return cuts_for(len(stream), seeds)


# --- the format -------------------------------------------------------------------------------------


def test_encode_matches_the_documented_format(runtime):
    payloads = [b"", b"\x00", b"hello", bytes(range(256)), b"\x00" * 300, b"\xff" * 480]
    got = runtime.run(body_encode, payloads)
    assert got == [expected_frame(p) for p in payloads]
    for f in got:
        assert f.endswith(b"\x00") and 0 not in f[:-1]


def test_max_payload_enforced_by_encode(runtime):
    limit = runtime.run(body_max_payload)
    assert limit == frame.MAX_PAYLOAD
    sizes = [0, limit - 1, limit, limit + 1, 4 * limit]
    got = runtime.run_many(body_encode_limit, [(n,) for n in sizes])
    assert got[3:] == ["ValueError", "ValueError"]
    assert all(isinstance(n, int) and n <= 512 for n in got[:3]), got  # "under 512 bytes on the wire"


def test_round_trip_arbitrary_chunking(runtime):
    examples = draw_examples(st.tuples(st.lists(st.binary(max_size=480), max_size=5), cut_seeds))
    batch = []
    for payloads, seeds in examples:
        stream = b"".join(frame.encode(p) for p in payloads)
        batch.append((stream, with_cuts(stream, seeds), None))
    results = runtime.run_many(body_feed, batch)
    for (payloads, _), (got, errors) in zip(examples, results):
        assert got == payloads
        assert errors == 0


def test_max_size_frame_passes_default_reader(runtime):
    payloads = [b"\x00" * frame.MAX_PAYLOAD, b"\x01" * frame.MAX_PAYLOAD, bytes(range(256)) + bytes(224)]
    stream = b"".join(expected_frame(p) for p in payloads)
    assert runtime.run(body_feed, stream, [], None) == (payloads, 0)


def test_empty_frames_between_delimiters_are_ignored(runtime):
    stream = b"\x00\x00" + frame.encode(b"a") + b"\x00\x00\x00" + frame.encode(b"") + b"\x00"
    assert runtime.run(body_feed, stream, [1, 5], None) == ([b"a", b""], 0)


def test_noise_before_and_between_frames(runtime):
    noise = st.binary(min_size=1, max_size=60)
    examples = draw_examples(
        st.tuples(
            st.lists(st.tuples(noise, st.binary(max_size=100)), min_size=1, max_size=4, unique_by=lambda t: t[1]),
            cut_seeds,
        )
    )
    batch, expect = [], []
    for items, seeds in examples:
        stream = b""
        runs = 0
        for junk, payload in items:
            # Noise, then the delimiter a receiver resynchronises on, then a good frame.
            stream += junk + b"\x00" + frame.encode(payload)
            runs += len([r for r in junk.split(b"\x00") if r])
        batch.append((stream, with_cuts(stream, seeds), None))
        expect.append(([payload for _, payload in items], runs))
    results = runtime.run_many(body_feed, batch)
    for got, want in zip(results, expect):
        assert got == want  # every good frame, and each burst of noise counted once as an error


def test_joining_mid_frame_drops_only_that_frame(runtime):
    a, b, c = frame.encode(b"first" * 10), frame.encode(b"second"), frame.encode(b"third")
    cases = [(a[k:] + b + c, [], None) for k in range(1, len(a) - 1)]
    for got, errors in runtime.run_many(body_feed, cases):
        assert got == [b"second", b"third"]
        assert errors == 1


CORRUPTIONS = st.sampled_from(["flip", "truncate", "insert"])


def corrupt(f, how, a, b, value):
    """Damage frame `f` (its delimiter included for flips). Returns (damaged, delimiter_lost)."""
    body = f[:-1]
    if how == "flip":
        bit = a % (len(f) * 8)
        damaged = bytearray(f)
        damaged[bit // 8] ^= 1 << (bit % 8)
        return bytes(damaged), bit // 8 == len(f) - 1
    if how == "truncate":
        # Remove a slice of the body, leaving at least one byte (an empty frame is no frame at all).
        length = 1 + b % (len(body) - 1)
        start = min(a % len(body), len(body) - length)
        return body[:start] + body[start + length :] + b"\x00", False
    # insert one byte; a zero at either end of the body would only add an empty frame, not damage this one
    if value == 0:
        pos = 1 + a % (len(body) - 1) if len(body) > 1 else None
        if pos is None:
            return None, False
    else:
        pos = a % (len(body) + 1)
    return body[:pos] + bytes([value]) + body[pos:] + b"\x00", False


def test_corrupted_frame_is_dropped_counted_and_reader_resyncs(runtime):
    examples = draw_examples(
        st.tuples(payloads4, CORRUPTIONS, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 255), cut_seeds)
    )
    batch, expect = [], []
    for payloads, how, a, b, value, seeds in examples:
        frames = [frame.encode(p) for p in payloads]
        damaged, delimiter_lost = corrupt(frames[1], how, a, b, value)
        if damaged is None:
            continue
        stream = frames[0] + damaged + frames[2] + frames[3]
        batch.append((stream, with_cuts(stream, seeds), None))
        p1, _, p3, p4 = payloads
        expect.append([p1, p4] if delimiter_lost else [p1, p3, p4])
    assert len(batch) > 100
    results = runtime.run_many(body_feed, batch)
    for (stream, _, _), want, (got, errors) in zip(batch, expect, results):
        assert got == want, stream
        assert errors >= 1


def test_every_single_bit_flip_of_one_frame(runtime):
    payload = bytes(range(40)) + b"\x00\x00"
    good, after, last = frame.encode(payload), frame.encode(b"after"), frame.encode(b"last")
    batch = []
    for bit in range(len(good) * 8):
        damaged = bytearray(good)
        damaged[bit // 8] ^= 1 << (bit % 8)
        batch.append((bytes(damaged) + after + last, [], None))
    results = runtime.run_many(body_feed, batch)
    for bit, (got, errors) in enumerate(results):
        if bit // 8 < len(good) - 1:
            assert got == [b"after", b"last"], bit
            assert 1 <= errors <= 2, bit  # a flip to 0x00 splits the frame into two bad ones
        else:  # the delimiter itself: this frame and the next run together, both are lost
            assert got == [b"last"], bit
            assert errors == 1, bit


@pytest.mark.parametrize("limit", [16, 100])
def test_oversized_frames_dropped_then_resync(runtime, limit):
    sizes = [limit - 1, limit, limit + 1, limit + 5, 3 * limit, 2000]
    stream = b""
    want = []
    big = 0
    for n in sizes:
        payload = bytes((i * 7 + n) & 0xFF for i in range(n))
        stream += expected_frame(payload) + frame.encode(b"ok%d" % n)
        if n <= limit:
            want.append(payload)
        else:
            big += 1
        want.append(b"ok%d" % n)
    got, errors = runtime.run(body_feed, stream, [7, 300, 301], limit)
    assert got == want
    assert errors == big


def test_oversized_frame_for_default_reader(runtime):
    big = expected_frame(b"\x42" * (frame.MAX_PAYLOAD + 1))
    huge = b"\x42" * 20000 + b"\x00"  # much more than any buffer: must not be buffered, only counted
    stream = big + huge + frame.encode(b"after")
    assert runtime.run(body_feed, stream, [100, 5000], None) == ([b"after"], 2)


def model_feed(stream, max_payload):
    """The reader's contract byte by byte, as a reference: split at every 0x00; an empty piece is
    nothing, a piece longer than the buffer or failing COBS/CRC is one error, the rest are payloads."""
    cap = cobs.max_encoded_len(max_payload + 4)
    out, errors = [], 0
    pieces = stream.split(b"\x00")
    for piece in pieces[:-1]:  # the last piece has no delimiter yet
        if not piece:
            continue
        try:
            body = cobs.decode(piece) if len(piece) <= cap else None
        except cobs.CobsError:
            body = None
        if body is None or len(body) < 4 or zlib.crc32(body[:-4]) != struct.unpack("<I", body[-4:])[0]:
            errors += 1
        else:
            out.append(body[:-4])
    return out, errors


def test_reader_matches_the_byte_by_byte_model_on_mixed_streams(runtime):
    """Good frames, garbage, overlong runs and frames of exactly the buffer size, cut anywhere."""
    piece = st.one_of(
        st.binary(max_size=40).map(frame.encode),
        st.binary(min_size=1, max_size=120),  # garbage, with or without zeros
        st.integers(20, 60).map(lambda n: b"\x42" * n),  # overlong for a 16-byte reader, no zero
        st.integers(0, 2).map(lambda k: b"\x00" * k),
    )
    examples = draw_examples(st.tuples(st.lists(piece, max_size=8), cut_seeds, st.sampled_from([16, 40])))
    batch = []
    for pieces, seeds, limit in examples:
        stream = b"".join(pieces)
        batch.append((stream, with_cuts(stream, seeds), limit))
    results = runtime.run_many(body_feed, batch)
    for (stream, _, limit), (got, errors) in zip(batch, results):
        assert (got, errors) == model_feed(stream, limit), stream.hex()


def body_wire_into(payloads):
    """wire_into with one pair of buffers reused for every payload, against b"\\x00" + encode()."""
    from protocol import cobs, frame

    out = bytearray(2 + cobs.max_encoded_len(frame.MAX_PAYLOAD + 4))
    scratch = bytearray(frame.MAX_PAYLOAD + 4)
    return [bytes(out[:frame.wire_into(p, out, scratch)]) == b"\x00" + frame.encode(p) for p in payloads]


def test_wire_into_reused_buffers_give_the_wire_bytes(runtime):
    import random

    rng = random.Random(5)
    payloads = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (480, 7, 0, 300, 1)]
    payloads += [bytes([1]) * 254, bytes([1]) * 250, bytes([9]) * 480, b"\x00" * 40, bytes(range(1, 256)) * 1]
    assert runtime.run(body_wire_into, payloads) == [True] * len(payloads)
