"""protocol/record.py on both runtimes: layout, round trip with extensions, malformed records, seq_of.

The expected bytes are packed here field by field from the layout table in the module's docstring
(little-endian, 44-byte header, then tag u8 / length u8 / value extensions).
"""

import struct

from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_round_trip(f, exts):
    from protocol import record

    data = record.encode(
        f["terminal"],
        f["seq"],
        f["time"],
        f["kind"],
        f["amount"],
        f["currency"],
        f["decision"],
        f["reason"],
        f["fare_id"],
        f["token"],
        exts,
    )
    assert isinstance(data, bytes)
    rec = record.decode(data)
    assert record.seq_of(data) == f["seq"]
    assert record.seq_of(memoryview(data)) == f["seq"]
    # decode also takes the buffers a journal hands it
    assert record.decode(memoryview(bytearray(data))) == rec
    return data, rec


def body_decode(data):
    from protocol import record

    try:
        return record.decode(data)
    except record.RecordError as e:
        assert isinstance(e, ValueError)
        return "RecordError"


def body_encode_error(token, exts):
    from protocol import record

    try:
        record.encode(b"T0000001", 1, 0, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1, token, exts)
    except record.RecordError:
        return "RecordError"
    return "encoded"


def body_seq_of(data):
    from protocol import record

    return [record.seq_of(data), record.seq_of(bytearray(data)), record.seq_of(memoryview(data))]


# --- helpers (CPython side) ---------------------------------------------------------------------------


def pack(f, exts):
    out = bytes([1, f["kind"], f["decision"], f["reason"]]) + f["terminal"]
    out += f["seq"].to_bytes(4, "little") + f["time"].to_bytes(4, "little") + f["amount"].to_bytes(4, "little")
    out += f["currency"].to_bytes(2, "little") + f["fare_id"].to_bytes(2, "little") + f["token"]
    assert len(out) == 44
    for tag, value in exts:
        out += bytes([tag, len(value)]) + value
    return out


u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
FIELDS = st.fixed_dictionaries(
    {
        "terminal": st.binary(min_size=8, max_size=8),
        "seq": u32,
        "time": u32,
        "kind": u8,
        "amount": u32,
        "currency": u16,
        "decision": u8,
        "reason": u8,
        "fare_id": u16,
        "token": st.binary(min_size=16, max_size=16),
    }
)
EXTS = st.lists(st.tuples(u8, st.binary(max_size=40)), max_size=5, unique_by=lambda t: t[0])

SAMPLE = {
    "terminal": b"TERM0001",
    "seq": 0x01020304,
    "time": 1700000000,
    "kind": 1,
    "amount": 200,
    "currency": 156,
    "decision": 1,
    "reason": 0,
    "fare_id": 1,
    "token": bytes(range(16)),
}
SAMPLE_EXTS = [(1, b"\x00\x2a"), (2, b"\xa0\x00\x00\x03\x33\x01\x01\x01"), (9, b"")]


def expected_dict(f, exts):
    rec = dict(f)
    rec["version"] = 1
    rec["ext"] = {tag: value for tag, value in exts}
    return rec


# --- tests ----------------------------------------------------------------------------------------------


def test_layout_and_round_trip_of_a_sample(runtime):
    data, rec = runtime.run(body_round_trip, SAMPLE, SAMPLE_EXTS)
    assert data == pack(SAMPLE, SAMPLE_EXTS)
    assert data[12:16] == b"\x04\x03\x02\x01"  # sequence at offset 12, little-endian
    assert rec == expected_dict(SAMPLE, SAMPLE_EXTS)


def test_round_trip_property(runtime):
    batch = draw_examples(st.tuples(FIELDS, EXTS))
    results = runtime.run_many(body_round_trip, batch)
    for (f, exts), (data, rec) in zip(batch, results):
        assert data == pack(f, exts)
        assert rec == expected_dict(f, exts)


def test_other_versions_rejected(runtime):
    good = pack(SAMPLE, SAMPLE_EXTS)
    batch = [(bytes([v]) + good[1:],) for v in range(256) if v != 1]
    assert runtime.run_many(body_decode, batch) == ["RecordError"] * 255


def test_every_truncation(runtime):
    good = pack(SAMPLE, SAMPLE_EXTS)
    boundaries = {44: [], 48: SAMPLE_EXTS[:1], 58: SAMPLE_EXTS[:2], 60: SAMPLE_EXTS}
    results = runtime.run_many(body_decode, [(good[:k],) for k in range(len(good) + 1)])
    for k, got in enumerate(results):
        if k in boundaries:
            assert got == expected_dict(SAMPLE, boundaries[k]), k
        else:
            assert got == "RecordError", k


def test_overrunning_extension(runtime):
    header = pack(SAMPLE, [])
    cases = [
        header + b"\x01",  # tag without a length
        header + b"\x01\x03\xaa\xbb",  # length 3, two bytes left
        header + b"\x01\x01\xaa" + b"\x02\xff" + b"\x00" * 200,  # second extension says 255, 200 follow
        header + b"\x07\xff",
    ]
    assert runtime.run_many(body_decode, [(c,) for c in cases]) == ["RecordError"] * len(cases)


def test_encode_refuses_bad_input(runtime):
    token = bytes(16)
    cases = [
        (bytes(15), []),
        (bytes(17), []),
        (token, [(1, bytes(256))]),  # one extension longer than its length byte can say
        (token, [(1, bytes(200)), (2, bytes(10))]),  # 44 + 202 + 12 = 258 > 255
        (token, [(1, bytes(209))]),  # 44 + 211 = 255: the largest record
    ]
    got = runtime.run_many(body_encode_error, cases)
    assert got == ["RecordError"] * 4 + ["encoded"]


def test_random_bytes_decode_or_record_error(runtime):
    data = st.one_of(
        st.binary(max_size=300),
        st.binary(min_size=43, max_size=300).map(lambda b: b"\x01" + b),  # version 1: extensions parsed
    )
    batch = [(d,) for d in draw_examples(data)]
    results = runtime.run_many(body_decode, batch)
    assert any(r == "RecordError" for r in results)
    for (d,), got in zip(batch, results):
        if got != "RecordError":
            assert got["version"] == 1 and len(d) >= 44
            assert got["seq"] == struct.unpack("<I", d[12:16])[0]


def test_seq_of(runtime):
    seqs = (0, 1, 0x01020304, 0xFFFFFFFF)
    got = runtime.run_many(body_seq_of, [(pack(dict(SAMPLE, seq=seq), SAMPLE_EXTS),) for seq in seqs])
    assert got == [[seq] * 3 for seq in seqs]
