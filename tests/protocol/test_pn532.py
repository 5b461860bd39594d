"""protocol/pn532.py on both runtimes: frame formats from the PN532 user manual, the streaming reader
(chunking, noise, corruption, bounds) and the command builders / response parsers.

Expected frames are built here from the manual's field layout (not with protocol.pn532), and two are
byte strings nfcpy's PN532 driver sends to a real chip.
"""

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import pn532

# --- bodies --------------------------------------------------------------------------------------


def body_encode(items):
    from protocol import pn532

    return [pn532.encode(tfi, data) for tfi, data in items]


def body_feed(stream, cuts):
    """Feed `stream` in the pieces `cuts` delimits: (events, errors); events as (kind, payload)."""
    from protocol import pn532

    reader = pn532.FrameReader()
    out = []
    start = 0
    for cut in list(cuts) + [len(stream)]:
        out.extend(reader.feed(stream[start:cut]))
        start = cut
        assert reader._n <= len(reader._buf)
    return out, reader.errors


def body_commands():
    from protocol import pn532

    return [
        pn532.get_firmware_version(),
        pn532.sam_configuration(1, 0, 0),
        pn532.in_list_passive_target(),
        pn532.in_data_exchange(1, b"\x00\xa4\x04\x00"),
        pn532.in_data_exchange(1, b"\x01", more=True),
        pn532.in_release(0),
    ]


def body_parse(kind, payload):
    """A parser's answer, or the error class name; anything else escapes and fails the test."""
    from protocol import pn532

    parsers = {
        "version": pn532.parse_firmware_version,
        "sam": pn532.parse_sam_configuration,
        "list": pn532.parse_in_list_passive_target,
        "exchange": pn532.parse_in_data_exchange,
        "release": lambda p: pn532.parse_status(p, pn532.CMD_IN_RELEASE),
    }
    try:
        return parsers[kind](payload)
    except pn532.Pn532Error as e:
        return "Pn532Error: " + str(e)


def body_status_text(codes):
    from protocol import pn532

    return [pn532.status_text(c) for c in codes]


def body_encode_too_long(n):
    from protocol import pn532

    try:
        pn532.encode(0xD4, bytes(n))
    except pn532.Pn532Error:
        return "Pn532Error"
    return "ok"


# --- helpers (CPython side) ----------------------------------------------------------------------


def manual_frame(tfi, data):
    """UM0701-02 §6.2.1.1 / §6.2.1.2, written out independently."""
    info = bytes([tfi]) + data
    n = len(info)
    dcs = (0x100 - sum(info) % 256) % 256
    if n <= 254:
        head = bytes([0, 0, 0xFF, n, (0x100 - n) % 256])
    else:
        head = bytes([0, 0, 0xFF, 0xFF, 0xFF, n >> 8, n & 0xFF, (0x100 - ((n >> 8) + (n & 0xFF)) % 256) % 256])
    return head + info + bytes([dcs, 0])


def cuts_for(n, seeds):
    if seeds is None:
        return list(range(1, n))
    return sorted({s % (n + 1) for s in seeds})


cut_seeds = st.one_of(st.lists(st.integers(0, 10**6), max_size=10), st.just(None))
# Payload bytes without 00 so that no start code (00 FF) can hide inside a payload; the corruption
# property below then has exactly one right answer.
clean_payload = st.binary(min_size=1, max_size=300).map(lambda b: bytes(x or 1 for x in b))


# --- formats -------------------------------------------------------------------------------------


def test_frames_match_the_manual(runtime):
    items = [(0xD4, b"\x02"), (0xD5, b"\x03\x32\x01\x06\x07"), (0xD5, bytes(253)), (0xD5, bytes(254)),
             (0xD4, bytes(range(256)) + b"\x01" * 8)]
    got = runtime.run(body_encode, items)
    assert got == [manual_frame(t, d) for t, d in items]
    assert got[2][3] == 254 and got[3][3:5] == b"\xff\xff"  # 255 information bytes need an extended frame


def test_commands_match_what_nfcpy_sends_a_real_chip(runtime):
    got = runtime.run(body_commands)
    assert got[0] == bytes.fromhex("0000ff02fed4022a00")  # GetFirmwareVersion
    assert got[1] == bytes.fromhex("0000ff05fbd4140100001700")  # SAMConfiguration normal mode
    assert got[2] == manual_frame(0xD4, b"\x4a\x01\x00")
    assert got[3] == manual_frame(0xD4, b"\x40\x01\x00\xa4\x04\x00")
    assert got[4] == manual_frame(0xD4, b"\x40\x41\x01")
    assert got[5] == manual_frame(0xD4, b"\x52\x00")


def test_encode_refuses_more_than_265_information_bytes(runtime):
    assert runtime.run_many(body_encode_too_long, [(263,), (264,), (265,)]) == ["ok", "ok", "Pn532Error"]


def test_ack_nack_error_and_frames_in_any_chunking(runtime):
    version = manual_frame(0xD5, b"\x03\x32\x01\x06\x07")
    long = manual_frame(0xD5, b"\x41\x00" + bytes(range(256)) + b"\x90\x00")
    stream = b"\x55\x55\x00" + pn532.ACK + version + pn532.NACK + pn532.ERROR_FRAME + long + pn532.ACK
    want = [(pn532.EV_ACK, None), (pn532.EV_FRAME, b"\xd5\x03\x32\x01\x06\x07"), (pn532.EV_NACK, None),
            (pn532.EV_ERROR, None), (pn532.EV_FRAME, long[8:-2]), (pn532.EV_ACK, None)]
    batch = [(stream, cuts) for cuts in ([], list(range(1, len(stream))), [3, 9, 10, 40, 200])]
    for events, errors in runtime.run_many(body_feed, batch):
        assert events == want
        assert errors == 0


def test_round_trip_arbitrary_chunking(runtime):
    examples = draw_examples(st.tuples(st.lists(st.binary(max_size=264), min_size=1, max_size=4), cut_seeds))
    batch = []
    for payloads, seeds in examples:
        stream = b"".join(manual_frame(0xD5, p) for p in payloads)
        batch.append((stream, cuts_for(len(stream), seeds)))
    for (payloads, _), (events, errors) in zip(examples, runtime.run_many(body_feed, batch)):
        assert events == [(pn532.EV_FRAME, b"\xd5" + p) for p in payloads]
        assert errors == 0


def test_noise_then_frames_resynchronises(runtime):
    noise = st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"\x01"))
    examples = draw_examples(st.tuples(st.lists(st.tuples(noise, clean_payload), min_size=1, max_size=3), cut_seeds))
    batch = []
    for items, seeds in examples:
        stream = b"".join(junk + manual_frame(0xD5, p) for junk, p in items)
        batch.append((stream, cuts_for(len(stream), seeds)))
    for (items, _), (events, _errors) in zip(examples, runtime.run_many(body_feed, batch)):
        assert events == [(pn532.EV_FRAME, b"\xd5" + p) for _, p in items]


def corrupt(frame, pos, bit):
    damaged = bytearray(frame)
    damaged[pos] ^= 1 << bit
    return bytes(damaged)


def test_corrupted_frame_is_rejected_and_the_next_ones_arrive(runtime):
    examples = draw_examples(st.tuples(st.lists(clean_payload, min_size=3, max_size=3), st.integers(0, 10**6),
                                       st.integers(0, 7), cut_seeds))
    batch, want = [], []
    for (p0, p1, p2), pos_seed, bit, seeds in examples:
        f1 = manual_frame(0xD5, p1)
        pos = pos_seed % len(f1)
        stream = manual_frame(0xD5, p0) + corrupt(f1, pos, bit) + manual_frame(0xD5, p2)
        batch.append((stream, cuts_for(len(stream), seeds)))
        # The preamble and postamble carry no information: a flip there leaves the frame intact.
        survives = pos == 0 or pos == len(f1) - 1
        want.append([b"\xd5" + p for p in ((p0, p1, p2) if survives else (p0, p2))])
    for expect, (events, _errors) in zip(want, runtime.run_many(body_feed, batch)):
        assert [p for _, p in events] == expect


def test_lcs_and_dcs_errors_are_counted(runtime):
    good = manual_frame(0xD5, b"\x03\x32\x01\x06\x07")
    bad_lcs = good[:4] + bytes([good[4] ^ 1]) + good[5:]
    bad_dcs = good[:-2] + bytes([good[-2] ^ 0x10]) + good[-1:]
    events, errors = runtime.run(body_feed, bad_lcs + bad_dcs + good, [])
    assert events == [(pn532.EV_FRAME, good[5:-2])]
    assert errors == 2


def test_garbage_never_raises_and_buffer_stays_bounded(runtime):
    examples = draw_examples(st.tuples(st.binary(max_size=800), cut_seeds))
    batch = [(data, cuts_for(len(data), seeds)) for data, seeds in examples]
    batch.append((b"\x00\xff\x01\x02" * 300, []))
    batch.append((b"\x00\xff\xff\xff\x01\x0a\xf5" + bytes(600), [5]))  # extended LEN 266: refused
    results = runtime.run_many(body_feed, batch)
    for events, _errors in results:
        for kind, payload in events:
            assert kind in (pn532.EV_ACK, pn532.EV_NACK, pn532.EV_ERROR, pn532.EV_FRAME)
            assert payload is None or 1 <= len(payload) <= pn532.MAX_INFO
    assert results[-2] == ([], 300)  # 00 FF 01 02: LEN 1 with LCS 2 is rejected each time
    assert results[-1] == ([], 1)


# --- responses -----------------------------------------------------------------------------------


def test_response_parsers(runtime):
    ats = bytes.fromhex("0578807002")
    listed = b"\xd5\x4b\x01\x01\x00\x04\x20\x04\x08\x12\x34\x56" + ats
    two = b"\xd5\x4b\x02\x01\x00\x44\x00\x07" + bytes(range(7)) + b"\x02\x00\x04\x08\x04\x01\x02\x03\x04"
    cases = [
        ("version", b"\xd5\x03\x32\x01\x06\x07"),
        ("sam", b"\xd5\x15"),
        ("list", listed),
        ("list", two),
        ("list", b"\xd5\x4b\x00"),
        ("exchange", b"\xd5\x41\x00\x90\x00"),
        ("exchange", b"\xd5\x41\x40\x6f\x10"),
        ("exchange", b"\xd5\x41\x01"),
        ("release", b"\xd5\x53\x00"),
    ]
    got = runtime.run_many(body_parse, cases)
    assert got[0] == (0x32, 1, 6, 7)
    assert got[1] is None
    assert got[2] == [(1, b"\x00\x04", 0x20, b"\x08\x12\x34\x56", ats)]
    assert got[3] == [(1, b"\x00\x44", 0, bytes(range(7)), None), (2, b"\x00\x04", 0x08, b"\x01\x02\x03\x04", None)]
    assert got[4] == []
    assert got[5] == (0, b"\x90\x00")
    assert got[6] == (0x40, b"\x6f\x10")
    assert got[7] == (1, b"")
    assert got[8] == 0


def test_malformed_responses_are_pn532_errors(runtime):
    cases = [
        ("version", b"\xd5\x03\x32\x01"),  # short
        ("version", b"\xd4\x03\x32\x01\x06\x07"),  # host TFI
        ("version", b"\xd5\x05\x32\x01\x06\x07"),  # another command's response
        ("sam", b"\xd5\x15\x00"),
        ("list", b"\xd5\x4b"),
        ("list", b"\xd5\x4b\x01\x01\x00\x04\x20\x04\x08\x12"),  # NFCID cut
        ("list", b"\xd5\x4b\x01\x01\x00\x04\x20\x04\x08\x12\x34\x56"),  # ATS missing
        ("list", b"\xd5\x4b\x01\x01\x00\x04\x20\x04\x08\x12\x34\x56\x09\x78"),  # ATS cut
        ("list", b"\xd5\x4b\x01\x01\x00\x04\x00\x05\x08\x12\x34\x56\x00"),  # NFCID length 5
        ("list", b"\xd5\x4b\x03"),
        ("list", b"\xd5\x4b\x01\x01\x00\x04\x00\x04\x08\x12\x34\x56\xee"),  # stray byte
        ("exchange", b"\xd5\x41"),
        ("release", b"\xd5\x53"),
        ("release", b""),
    ]
    for got in runtime.run_many(body_parse, cases):
        assert isinstance(got, str) and got.startswith("Pn532Error"), got


def test_parsers_never_raise_anything_else(runtime):
    kinds = st.sampled_from(["version", "sam", "list", "exchange", "release"])
    prefix = st.sampled_from([b"", b"\xd5", b"\xd5\x03", b"\xd5\x15", b"\xd5\x4b", b"\xd5\x41", b"\xd5\x53"])
    examples = draw_examples(st.tuples(kinds, st.tuples(prefix, st.binary(max_size=40)).map(lambda t: t[0] + t[1])))
    for got in runtime.run_many(body_parse, examples):
        assert got is None or isinstance(got, (str, tuple, list, int))


def test_status_texts(runtime):
    got = runtime.run(body_status_text, [0x01, 0x41, 0x2B, 0x29, 0x3F])
    assert got == ["target did not answer", "target did not answer", "card disappeared", "target released",
                   "error 0x3F"]
