"""protocol/messages.py on both runtimes: HELLO / RECORDS / ACK layouts and round trips; any malformed
payload raises MessageError and nothing else.

Layouts are those of the module docstring, packed here by hand.
"""

import struct

from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_build_and_parse(terminal, text, batch, seq):
    from protocol import messages

    out = []
    for payload in (messages.hello(terminal, text), messages.records(batch), messages.ack(seq)):
        kind, body = messages.parse(payload)
        # the parser also takes the memoryview a frame reader could hand it
        assert messages.parse(memoryview(payload)) == (kind, body)
        out.append((payload, kind, body))
    return out


def body_records_check(batch, expected):
    from protocol import messages

    payload = messages.records(batch)
    assert payload == expected
    kind, body = messages.parse(payload)
    assert kind == messages.RECORDS and body == batch
    return len(body)


def body_parse(payload):
    from protocol import messages

    try:
        return messages.parse(payload)
    except messages.MessageError as e:
        assert isinstance(e, ValueError)
        return "MessageError"


def body_types():
    from protocol import messages

    return [messages.HELLO, messages.RECORDS, messages.ACK]


# --- helpers (CPython side) ---------------------------------------------------------------------------


def hello_bytes(terminal, text):
    return b"\x01" + terminal + text.encode("utf-8")


def records_bytes(batch):
    return b"\x02" + bytes([len(batch)]) + b"".join(struct.pack("<H", len(r)) + r for r in batch)


def ack_bytes(seq):
    return b"\x03" + struct.pack("<I", seq)


TERMINAL = st.binary(min_size=8, max_size=8)
BATCH = st.lists(st.binary(max_size=300), max_size=8)
SEQ = st.integers(0, 0xFFFFFFFF)


# --- tests ----------------------------------------------------------------------------------------------


def test_type_codes(runtime):
    assert runtime.run(body_types) == [1, 2, 3]


def test_sample_round_trip(runtime):
    terminal, text, batch, seq = b"TERM\x00\x01\x02\xff", "micropython 1.29 智付", [b"rec-1", b"", b"\x00" * 70], 70000
    got = runtime.run(body_build_and_parse, terminal, text, batch, seq)
    assert got == [
        (hello_bytes(terminal, text), 1, (terminal, text)),
        (records_bytes(batch), 2, batch),
        (ack_bytes(seq), 3, seq),
    ]


def test_round_trip_property(runtime):
    examples = draw_examples(st.tuples(TERMINAL, st.text(max_size=40), BATCH, SEQ))
    results = runtime.run_many(body_build_and_parse, examples)
    for (terminal, text, batch, seq), got in zip(examples, results):
        assert got == [
            (hello_bytes(terminal, text), 1, (terminal, text)),
            (records_bytes(batch), 2, batch),
            (ack_bytes(seq), 3, seq),
        ]


def test_records_with_255_records(runtime):
    batch = [bytes([i]) * (i % 7) for i in range(255)]
    expected = records_bytes(batch)
    # compared inside the body: a small answer keeps the 128k heap free for the work itself
    assert runtime.run(body_records_check, batch, expected) == 255


MALFORMED = [
    b"",  # empty
    b"\x00",  # unknown type
    b"\x04\x00\x00\x00\x00",
    b"\xff",
    b"\x01",  # HELLO without terminal id
    b"\x01TERM001",  # 7-byte terminal id
    b"\x01TERM0001\xff\xfe",  # runtime text that is not UTF-8
    b"\x01TERM0001ok\xc3",  # UTF-8 cut inside a character
    b"\x02",  # RECORDS without a count
    b"\x02\x01",  # one record announced, none there
    b"\x02\x01\x05",  # length cut
    b"\x02\x01\x05\x00abcd",  # record cut
    b"\x02\x02\x01\x00a",  # second record missing
    b"\x02\x00x",  # bytes after the last record
    b"\x02\x01\x01\x00ab",
    b"\x03",  # ACK without a sequence
    b"\x03\x01\x02\x03",
    b"\x03\x01\x02\x03\x04\x05",
]


def test_malformed_raise_message_error(runtime):
    got = runtime.run_many(body_parse, [(m,) for m in MALFORMED])
    assert got == ["MessageError"] * len(MALFORMED)


def test_random_payloads_parse_or_message_error(runtime):
    payload = st.one_of(
        st.binary(max_size=80),
        st.tuples(st.sampled_from([1, 2, 3]), st.binary(max_size=80)).map(lambda t: bytes([t[0]]) + t[1]),
        # a RECORDS header with a small count, so that real records are sometimes found
        st.tuples(st.integers(0, 3), st.binary(max_size=40)).map(lambda t: bytes([2, t[0]]) + t[1]),
    )
    batch = [(p,) for p in draw_examples(payload)]
    results = runtime.run_many(body_parse, batch)
    assert "MessageError" in results
    for (p,), got in zip(batch, results):
        if got == "MessageError":
            continue
        kind, body = got
        assert kind == p[0]
        if kind == 1:
            assert hello_bytes(*body) == p
        elif kind == 2:
            assert records_bytes(body) == p
        else:
            assert ack_bytes(body) == p
