"""protocol/mpm.py on both runtimes: the project's MPM vectors (good and wrong CRC), nested templates,
the CRC computed here independently (CRC-16/CCITT-FALSE written out below), structure errors, fuzzing.
"""

import json
import os
import string

from hypothesis import strategies as st
from runtimes import draw_examples

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "emv_qr.json")


def load_mpm():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)["mpm"]


def ref_crc(data):
    crc = 0xFFFF
    for b in data:
        for i in range(8):
            bit = (b >> (7 - i)) & 1
            top = (crc >> 15) & 1
            crc = (crc << 1) & 0xFFFF
            if top ^ bit:
                crc ^= 0x1021
    return crc


def body_decode(text):
    from protocol import mpm

    try:
        objects, crc_ok = mpm.decode(text)
    except mpm.MpmError as e:
        assert isinstance(e, ValueError)
        return ("MpmError", str(e))
    return ("ok", objects, crc_ok, mpm.fields(objects))


def body_encode(pairs):
    from protocol import mpm

    text = mpm.encode(pairs)
    return text, mpm.decode(text)[1]


def test_vectors(runtime):
    for v in load_mpm():
        got = runtime.run(body_decode, v["payload"])
        assert got[0] == "ok" and got[2] is v["crc_ok"], (v["name"], got)
        objects, fields = got[1], got[3]
        assert [o[0] for o in objects] == ["00", "01", "15", "52", "53", "58", "59", "60", "62", "63"]
        assert objects[8] == ("62", "0705T0012", [("07", "T0012", None)])
        assert fields["merchant_name"] == "YIYUAN BUS 12" and fields["currency"] == "156"
        assert fields["static"] is True and fields["merchant_accounts"][0]["id"] == "15"
        body = v["payload"][:-4]
        assert ("%04X" % ref_crc(body.encode()) == v["payload"][-4:]) is v["crc_ok"]


def test_encode_round_trip_with_templates(runtime):
    pairs = [("01", "12"), ("26", [("00", "A000000333"), ("01", "M1234")]), ("52", "4111"), ("53", "156"),
             ("54", "2.00"), ("58", "CN"), ("59", "GATE 3"), ("60", "YIYUAN"), ("62", [("05", "R1")])]
    text, ok = runtime.run(body_encode, pairs)
    assert ok is True and text.startswith("000201") and text[-8:-4] == "6304"
    assert "%04X" % ref_crc(text[:-4].encode()) == text[-4:]
    got = runtime.run(body_decode, text)
    assert got[1][2] == ("26", "0010A0000003330105M1234", [("00", "A000000333", None), ("01", "M1234", None)])
    assert got[3]["amount"] == "2.00" and got[3]["static"] is False
    assert got[3]["merchant_accounts"] == [{"id": "26", "gui": "A000000333", "value": "0010A0000003330105M1234"}]


def test_structure_errors(runtime):
    good = load_mpm()[0]["payload"]
    cases = [
        "",  # nothing
        good[:-1],  # CRC value truncated
        good[:-8],  # no CRC field
        "000202" + good[6:],  # format indicator not 01
        good[6:],  # format indicator missing
        "0002010A" + good[6:],  # bad length digits
        good.replace("6304", "6305", 1),  # CRC length not 04
        "00020100020163040000",  # repeated ID
        "000201620A0705T00126304ABCD",  # bad template length
        "x" * 600,
    ]
    for text, got in zip(cases, runtime.run_many(body_decode, [(c,) for c in cases])):
        assert got[0] == "MpmError", (text, got)


def test_fuzz_only_mpm_error(runtime):
    good = load_mpm()[0]["payload"]
    alphabet = string.digits + string.ascii_uppercase + " é"
    examples = draw_examples(st.one_of(
        st.text(alphabet, max_size=80),
        st.lists(st.tuples(st.integers(0, 200), st.sampled_from(alphabet)), min_size=1, max_size=3).map(
            lambda e: "".join(c if i not in dict(e) else dict(e)[i] for i, c in enumerate(good))),
    ))
    results = runtime.run_many(body_decode, [(t,) for t in examples])
    for text, got in zip(examples, results):
        assert got[0] in ("ok", "MpmError"), (text, got)
        if got[0] == "ok":
            assert got[2] is ("%04X" % ref_crc(text[:-4].encode()) == text[-4:]), (text, got)
    assert any(g[0] == "MpmError" for g in results)
