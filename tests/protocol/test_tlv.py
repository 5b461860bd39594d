"""protocol/tlv.py on both runtimes: the EMVCo CPM sample against its published tree, tag and length
forms, the depth limit, truncation and fuzzing (TlvError only, saying where), encode/decode round trip.

The reference encoder below is written here from BER-TLV (ISO/IEC 8825-1 as EMV Book 3 annex B uses
it), not taken from the module.
"""

import base64
import json
import os
import re

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "emv_qr.json")


def load_cpm_vector():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)["cpm"][0]


# --- bodies --------------------------------------------------------------------------------------


def body_decode(data, max_depth):
    """The decoded objects, or ("TlvError", message)."""
    from protocol import tlv

    try:
        if max_depth is None:
            return tlv.decode(data)
        return tlv.decode(data, max_depth)
    except tlv.TlvError as e:
        assert isinstance(e, ValueError)
        return ("TlvError", str(e))


def body_round_trip(data):
    """Decode, check the object shape, re-encode with tlv.encode: must give `data` back.

    Returns the objects with each constructed value (checked here to be its children's encoding)
    replaced by None, to keep the answer small for a 128k heap."""
    from protocol import tlv

    objects = tlv.decode(data, max_size=len(data))  # generated trees may exceed the default QR-sized limit

    def encode_all(objs):
        out = b""
        for tag, value, children in objs:
            assert isinstance(tag, int) and isinstance(value, bytes)
            if children is not None:
                assert encode_all(children) == value
            out += tlv.encode(tag, value)
        return out

    def shape(objs):
        return [(t, v if c is None else None, None if c is None else shape(c)) for t, v, c in objs]

    again = encode_all(objects)
    assert again == data, (again, data)
    return shape(objects)


def body_find(data, tags):
    from protocol import tlv

    objects = tlv.decode(data)
    return [tlv.find(objects, t) for t in tags]


def body_encode(tag, size):
    """tlv.encode of `size` bytes: the tag and length bytes it put before the value."""
    from protocol import tlv

    value = bytes(size)
    try:
        out = tlv.encode(tag, value)
    except tlv.TlvError:
        return "TlvError"
    assert out[len(out) - size :] == value
    return out[: len(out) - size]


def body_max_depth():
    from protocol import tlv

    return tlv.MAX_DEPTH


# --- reference encoder and tree conversion (CPython side) --------------------------------------------


def ref_length(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def ref_encode(node):
    """node: (tag_bytes, value_bytes) primitive or (tag_bytes, [nodes]) constructed."""
    tag, content = node
    if isinstance(content, list):
        content = b"".join(ref_encode(c) for c in content)
    return tag + ref_length(len(content)) + content


def shape_of(objects):
    """Decoded objects with constructed values left out (see body_round_trip)."""
    return [(t, v if c is None else None, None if c is None else shape_of(c)) for t, v, c in objects]


def expected_shape(nodes):
    """What body_round_trip should return for a list of nodes."""
    return [
        (int.from_bytes(tag, "big"), None, expected_shape(content))
        if isinstance(content, list)
        else (int.from_bytes(tag, "big"), content, None)
        for tag, content in nodes
    ]


def as_vector_tree(objects):
    """Decoded objects in the vector file's JSON shape."""
    out = []
    for tag, value, children in objects:
        hex_tag = "%X" % tag
        if len(hex_tag) % 2:
            hex_tag = "0" + hex_tag
        if children is None:
            out.append({"tag": hex_tag, "value": value.hex().upper()})
        else:
            out.append({"tag": hex_tag, "children": as_vector_tree(children)})
    return out


def error_position(message):
    match = re.search(r"at byte (\d+)", message)
    assert match, "TlvError should say where: %r" % message
    return int(match.group(1))


def tag_strategy(constructed):
    bit = 0x20 if constructed else 0
    one = st.integers(0, 255).filter(lambda b: b & 0x1F != 0x1F).map(lambda b: bytes([(b & ~0x20) | bit]))
    first = st.sampled_from([0x1F, 0x5F, 0x9F, 0xDF]).map(lambda b: b | bit)
    two = st.tuples(first, st.integers(0, 0x7F)).map(bytes)
    three = st.tuples(first, st.integers(0x80, 0xFF), st.integers(0, 0x7F)).map(bytes)
    return st.one_of(one, two, three)


PRIMITIVE = st.tuples(tag_strategy(False), st.one_of(st.binary(max_size=20), st.binary(min_size=120, max_size=300)))
NODES = st.recursive(
    PRIMITIVE,
    lambda inner: st.tuples(tag_strategy(True), st.lists(inner, max_size=4)),
    max_leaves=12,
)
TREES = st.lists(NODES, max_size=4)


def nest(depth, inner=b"\x5a\x01\x42"):
    data = inner
    for _ in range(depth):
        data = b"\x61" + ref_length(len(data)) + data
    return data


# --- the published sample -------------------------------------------------------------------------------


def test_vector_file_is_consistent():
    vector = load_cpm_vector()
    assert base64.b64decode(vector["payload"]) == bytes.fromhex(vector["hex"])


def test_cpm_sample_matches_its_tlv_tree(runtime):
    vector = load_cpm_vector()
    raw = bytes.fromhex(vector["hex"])
    objects = runtime.run(body_decode, raw, None)
    assert as_vector_tree(objects) == vector["tlv"]
    # constructed values are the raw bytes of their children
    assert objects[3][0] == 0x62 and raw.endswith(objects[3][1])
    assert runtime.run(body_round_trip, raw) == shape_of(objects)


def test_find_on_the_sample(runtime):
    raw = bytes.fromhex(load_cpm_vector()["hex"])
    got = runtime.run(body_find, raw, [0x9F26, 0x5A, 0x4F, 0x9F36, 0x64, 0x9F02])
    assert got[0] == bytes.fromhex("584FD385FA234BCC")  # four levels down: 62 > 64 > 9F26
    assert got[1] == bytes.fromhex("1234567890123458")
    assert got[2] == bytes.fromhex("A0000000555555")  # the first match, depth first
    assert got[3] == b"\x00\x01"
    assert got[4].startswith(b"\x9f\x10\x07")
    assert got[5] is None


def test_every_truncation_of_the_sample(runtime):
    raw = bytes.fromhex(load_cpm_vector()["hex"])
    full = runtime.run(body_decode, raw, None)
    boundaries, pos = {}, 0
    for i, obj in enumerate(full):
        pos += len(ref_encode_obj(obj))
        boundaries[pos] = full[: i + 1]
    results = runtime.run_many(body_decode, [(raw[:k], None) for k in range(len(raw))])
    for k, got in enumerate(results):
        if k == 0:
            assert got == []
        elif k in boundaries:
            assert got == boundaries[k], k
        else:
            assert got[0] == "TlvError", k
            assert error_position(got[1]) <= k, (k, got)


def ref_encode_obj(obj):
    tag, value, _ = obj
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + ref_length(len(value)) + value


# --- tag and length forms ---------------------------------------------------------------------------------


def test_tag_and_length_forms(runtime):
    cases = [
        (b"\x5a\x00", [(0x5A, b"", None)]),
        (b"\x9f\x26\x02\xab\xcd", [(0x9F26, b"\xab\xcd", None)]),
        (b"\x5f\x81\x01\x01\x07", [(0x5F8101, b"\x07", None)]),  # three-byte tag
        (b"\xbf\x0c\x03\x5a\x01\x09", [(0xBF0C, b"\x5a\x01\x09", [(0x5A, b"\x09", None)])]),  # constructed 2-byte
        (b"\x50\x81\x80" + b"A" * 128, [(0x50, b"A" * 128, None)]),
        (b"\x50\x81\x05hello", [(0x50, b"hello", None)]),  # long form for a short value is still valid BER
        (b"\x50\x82\x01\x00" + b"B" * 256, [(0x50, b"B" * 256, None)]),
        (b"\x50\x82\x00\x02hi\x51\x00", [(0x50, b"hi", None), (0x51, b"", None)]),
        (b"\x61\x00", [(0x61, b"", [])]),
    ]
    results = runtime.run_many(body_decode, [(data, None) for data, _ in cases])
    assert results == [want for _, want in cases]


def test_malformed_tags_and_lengths(runtime):
    cases = [
        b"\x9f",  # multi-byte tag cut after its first byte
        b"\x9f\x81",  # ... and after a continuation byte
        b"\x9f\x81\x81\x01\x01\xaa",  # four-byte tag
        b"\x9f\x81\x81\x81\x01\x01\xaa",  # five-byte tag
        b"\x5a",  # length missing
        b"\x5a\x80",  # indefinite length: not in EMV
        b"\x5a\x85\x00\x00\x00\x00\x01\xaa",  # five length bytes
        b"\x5a\x81",  # long length cut
        b"\x5a\x82\x01",
        b"\x5a\x05abcd",  # value cut
        b"\x5a\x82\x01\x00" + b"x" * 255,
        b"\x61\x03\x5a\x05a",  # child overruns its template
        b"\x61\x02\x5a\x00\x5b",  # second child's length missing inside the template
    ]
    results = runtime.run_many(body_decode, [(data, None) for data in cases])
    for data, got in zip(cases, results):
        assert isinstance(got, tuple) and got[0] == "TlvError", (data, got)
        assert error_position(got[1]) <= len(data), (data, got)


def test_encode_lengths(runtime):
    sizes = [0, 1, 127, 128, 255, 256, 1000, 20000]
    if runtime.name == "cpython":
        sizes.append(65535)  # the largest 0x82 length; encoding it needs more than a 128k heap
    cases = [(0x5A, n) for n in sizes] + [(0x9F26, 1), (0x5F8101, 0)]
    got = runtime.run_many(body_encode, cases)
    want = [ref_encode((tag.to_bytes((tag.bit_length() + 7) // 8, "big"), bytes(n)))[: -n or None] for tag, n in cases]
    assert got == want
    assert runtime.run(body_encode, 0x5A, 65536) == "TlvError"


# --- depth ----------------------------------------------------------------------------------------------


def test_depth_limit(runtime):
    limit = runtime.run(body_max_depth)
    assert 2 <= limit <= 16
    batch = [(nest(limit), None), (nest(limit + 1), None), (nest(2), 2), (nest(3), 2), (nest(0), 0), (nest(1), 0)]
    ok_default, too_deep, ok_two, three, flat, one = runtime.run_many(body_decode, batch)
    assert ok_default[0][0] == 0x61 and ok_default[0][2] is not None
    assert too_deep[0] == "TlvError" and error_position(too_deep[1]) <= len(batch[1][0])
    assert ok_two[0][2][0][2] == [(0x5A, b"\x42", None)]
    assert three[0] == "TlvError"
    assert flat == [(0x5A, b"\x42", None)]
    assert one[0] == "TlvError"


def test_hostile_nesting_is_refused_not_a_recursion_error(runtime):
    # 400 nested templates: far deeper than any stack a board has; must stop at the depth limit.
    got = runtime.run(body_decode, nest(400), None)
    assert got[0] == "TlvError"


# --- properties ------------------------------------------------------------------------------------------


def test_round_trip_property(runtime):
    trees = draw_examples(TREES)
    batch = [(b"".join(ref_encode(n) for n in tree),) for tree in trees]
    results = runtime.run_many(body_round_trip, batch)
    for tree, got in zip(trees, results):
        assert got == expected_shape(tree)


def mutate(data, how, a, b):
    if not data:
        return bytes([a & 0xFF])
    pos = a % len(data)
    if how == 0:
        out = bytearray(data)
        out[pos] ^= 1 << (b % 8)
        return bytes(out)
    if how == 1:
        return data[:pos] + data[pos + 1 + b % 4 :]
    if how == 2:
        return data[:pos] + bytes([b & 0xFF]) + data[pos:]
    return data[:pos]


@pytest.mark.parametrize("source", ["random", "mutated"])
def test_fuzz_only_tlv_error(runtime, source):
    if source == "random":
        data = st.one_of(
            st.binary(max_size=200),
            st.lists(
                st.sampled_from([0x1F, 0x9F, 0x61, 0x5A, 0x81, 0x82, 0x83, 0x80, 0xFF, 0x00, 0x01, 0x7F]), max_size=60
            ).map(bytes),
        )
        examples = draw_examples(data)
    else:
        trees = st.tuples(
            TREES,
            st.lists(
                st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=3
            ),
        )
        examples = []
        for tree, edits in draw_examples(trees):
            data = b"".join(ref_encode(n) for n in tree)
            for how, a, b in edits:
                data = mutate(data, how, a, b)
            examples.append(data)
    results = runtime.run_many(body_decode, [(d, None) for d in examples])
    errors = 0
    for data, got in zip(examples, results):
        if isinstance(got, tuple):
            assert got[0] == "TlvError"
            if len(data) > 4096:  # protocol/tlv.py MAX_SIZE: the whole input is refused, no position
                assert "exceeds 4096" in got[1], (len(data), got)
            else:
                assert 0 <= error_position(got[1]) <= len(data), (data, got)
            errors += 1
        else:
            # what decodes re-encodes (lengths in their shortest form) into at most as many bytes
            assert bool(got) == bool(data)
            assert len(b"".join(ref_encode_obj(o) for o in got)) <= len(data)
    assert 0 < errors < len(examples)


def body_decode_opts(data, unique, repeatable, max_size):
    from protocol import tlv

    try:
        return tlv.decode(data, unique=unique, repeatable=tuple(repeatable), max_size=max_size)
    except tlv.TlvError as e:
        return ("TlvError", str(e))


def test_duplicates_refused_only_when_asked(runtime):
    dup_top = bytes.fromhex("5A01015A0102")
    dup_inner = bytes.fromhex("62079F3601015A0101")  # same tag at different levels is fine
    dup_deep = bytes.fromhex("6208" "9F360101" "9F360102")
    two_apps = bytes.fromhex("6103500141" "6103500142")
    cases = [(dup_top, False, [], 4096), (dup_top, True, [], 4096), (dup_inner, True, [], 4096),
             (dup_deep, True, [], 4096), (two_apps, True, [], 4096), (two_apps, True, [0x61], 4096),
             (dup_top, False, [], 5)]
    got = runtime.run_many(body_decode_opts, cases)
    assert got[0] == [(0x5A, b"\x01", None), (0x5A, b"\x02", None)]
    assert got[1][0] == "TlvError" and "5A repeated" in got[1][1] and error_position(got[1][1]) == 3
    assert got[2] == [(0x62, bytes.fromhex("9F3601015A0101"), [(0x9F36, b"\x01", None), (0x5A, b"\x01", None)])]
    assert got[3][0] == "TlvError" and "9F36 repeated" in got[3][1] and error_position(got[3][1]) == 6
    assert got[4][0] == "TlvError" and "61 repeated" in got[4][1]
    assert [o[0] for o in got[5]] == [0x61, 0x61]
    assert got[6][0] == "TlvError" and "exceeds 5" in got[6][1]


def test_object_count_limit(runtime):
    from protocol import tlv

    many = bytes.fromhex("0100") * (tlv.MAX_OBJECTS + 1)
    got = runtime.run_many(body_decode_opts, [(many[:-2], False, [], 4096), (many, False, [], 4096)])
    assert len(got[0]) == tlv.MAX_OBJECTS
    assert got[1][0] == "TlvError" and error_position(got[1][1]) == 2 * tlv.MAX_OBJECTS
