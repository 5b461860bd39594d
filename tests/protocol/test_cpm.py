"""protocol/cpm.py on both runtimes: the EMVCo CPM sample, encode/decode round trips through the
track-2 equivalent data, the 5A path, is_cpm, garbage (CpmError only) and the payload length limit.

Payloads that are not made by cpm.encode are built here from BER-TLV bytes and base64 on CPython.
"""

import base64
import json
import os
import string

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "emv_qr.json")


def load_vectors():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


# --- bodies --------------------------------------------------------------------------------------


def body_read(text):
    """("ok", account, ATC, cryptogram) or ("CpmError", message); nothing else may escape."""
    from protocol import cpm, tlv

    try:
        objects = cpm.decode(text)
        account = cpm.account_number(objects)
    except cpm.CpmError as e:
        assert isinstance(e, ValueError)
        return ("CpmError", str(e))
    assert objects[0] == (cpm.T_FORMAT, b"CPV01", None)
    return ("ok", account, tlv.find(objects, cpm.T_ATC), tlv.find(objects, cpm.T_CRYPTOGRAM))


def body_encode(pan, expiry, atc, cryptogram):
    from protocol import cpm

    text = cpm.encode(pan, expiry=expiry, atc=atc, cryptogram=cryptogram)
    assert isinstance(text, str)
    assert cpm.is_cpm(text) and cpm.is_cpm(text.encode())
    objects = cpm.decode(text)
    assert cpm.decode(text.encode()) == objects  # a scanner line may arrive as bytes
    return text, cpm.account_number(objects)


def body_is_cpm(texts):
    from protocol import cpm

    return [cpm.is_cpm(t) for t in texts]


def body_max_text():
    from protocol import cpm

    return cpm.MAX_TEXT


# --- helpers (CPython side) -------------------------------------------------------------------------


def tlv(tag, value):
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])
    return tag_bytes + length + value


def payload(*common, extra=b"", fmt=b"CPV01"):
    raw = tlv(0x85, fmt) + tlv(0x61, tlv(0x4F, bytes.fromhex("A000000333010101"))) + tlv(0x62, b"".join(common))
    return base64.b64encode(raw + extra).decode()


def bcd(digits):
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


ATC_9F36 = tlv(0x64, tlv(0x9F36, b"\x00\x07"))


def luhn_free_pan(n, seed):
    return "".join(str((seed * 7 + i * 3) % 10) for i in range(n))


# --- the published sample ---------------------------------------------------------------------------


def test_cpm_sample(runtime):
    vector = load_vectors()["cpm"][0]
    got = runtime.run(body_read, vector["payload"])
    assert got == ("ok", "1234567890123458", b"\x00\x01", bytes.fromhex("584FD385FA234BCC"))
    assert runtime.run(body_read, vector["payload"].encode()) == got


def test_is_cpm(runtime):
    vectors = load_vectors()
    sample = vectors["cpm"][0]["payload"]
    texts = [
        sample,
        sample.encode(),
        bytearray(sample.encode()),
        "hQVDUFYwM",
        b"hQVDUFYwM",
        "hQVDUFYw",
        "hQVDUFYwN" + sample[9:],
        "",
        b"",
        vectors["mpm"][0]["payload"],
        vectors["mpm"][0]["payload"].encode(),
        "HQVDUFYwM" + sample[9:],
        " " + sample,
    ]
    assert runtime.run(body_is_cpm, texts) == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
    ]


# --- round trips ------------------------------------------------------------------------------------------


def test_encode_decode_round_trip_pan_lengths(runtime):
    batch = [(luhn_free_pan(n, n), "3012", n * 1000, bytes(range(n, n + 8))) for n in range(12, 20)]
    results = runtime.run_many(body_encode, batch)
    for (pan, expiry, atc, cryptogram), (text, account) in zip(batch, results):
        assert account == pan
        raw = base64.b64decode(text)
        assert raw.startswith(b"\x85\x05CPV01")
        track2 = bcd(pan + "D" + expiry + "2200000000000")
        assert tlv(0x57, track2) in raw  # track-2 equivalent data, PAN then separator D then expiry
        assert tlv(0x9F36, atc.to_bytes(2, "big")) in raw
        assert tlv(0x9F26, cryptogram) in raw
    read = runtime.run_many(body_read, [(text,) for text, _ in results])
    for (pan, _, atc, cryptogram), got in zip(batch, read):
        assert got == ("ok", pan, atc.to_bytes(2, "big"), cryptogram)


def test_round_trip_property(runtime):
    examples = draw_examples(
        st.tuples(
            st.integers(12, 19).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
            st.text("0123456789", min_size=4, max_size=4),
            st.integers(0, 0xFFFF),
            st.binary(min_size=8, max_size=8),
        )
    )
    results = runtime.run_many(body_encode, examples)
    for (pan, _, _, _), (_, account) in zip(examples, results):
        assert account == pan


def test_pan_from_5a(runtime):
    cases = [
        (payload(tlv(0x5A, bcd("6212345678901234")), ATC_9F36), "6212345678901234"),
        (payload(tlv(0x5A, bcd("6212345678901234567")), ATC_9F36), "6212345678901234567"),  # odd: F pad
        (payload(tlv(0x5A, bcd("621234567890"))), "621234567890"),
        # 5A wins over 57 when both are there
        (payload(tlv(0x5A, bcd("6299999999999999")), tlv(0x57, bcd("6211111111111111D3012"))), "6299999999999999"),
    ]
    got = runtime.run_many(body_read, [(text,) for text, _ in cases])
    assert [g[1] for g in got] == [pan for _, pan in cases]
    assert got[0][2] == b"\x00\x07" and got[2][2] is None


def test_bad_account_data(runtime):
    cases = [
        payload(tlv(0x5A, bcd("62123456789"))),  # 11 digits
        payload(tlv(0x5A, bcd("62123456789012345678"))),  # 20 digits
        payload(tlv(0x5A, bytes.fromhex("6212345678901234A1"))),  # a nibble that is no digit
        payload(tlv(0x57, bcd("6212345678901234"))),  # track 2 without its separator
        payload(tlv(0x57, bcd("62123456789D3012"))),  # track 2 with an 11-digit PAN
        payload(tlv(0x57, bytes.fromhex("6212345678901234E3012F"))),  # wrong separator
        payload(tlv(0x5F20, b"NO ACCOUNT")),  # neither 5A nor 57
        payload(extra=b"")[:-4],  # cut
        base64.b64encode(tlv(0x85, b"CPV01") + tlv(0x61, b"")).decode(),  # an application template without 4F
        payload(tlv(0x5A, bcd("6212345678901234")), fmt=b"CPV02"),  # another format indicator
        base64.b64encode(tlv(0x62, tlv(0x5A, bcd("6212345678901234"))) + tlv(0x85, b"CPV01")).decode(),
        payload(tlv(0x5A, bcd("6212345678901234")))[:-2] + "!!",  # not base64
        "hQVDUFYwM",
        "hQVDUFYwMW",
        "",
    ]
    got = runtime.run_many(body_read, [(c,) for c in cases])
    for text, result in zip(cases, got):
        assert result[0] == "CpmError", (text, result)


def test_payload_length_limit(runtime):
    limit = runtime.run(body_max_text)
    assert limit == 512
    common = tlv(0x57, bcd("6212345678901234D3012"))
    # an unknown tag carries filler bytes, as many as make exactly `limit` base64 characters
    filler = next(n for n in range(600) if len(payload(common, extra=tlv(0x9F7F, b"\x11" * n))) == limit)
    at_limit = payload(common, extra=tlv(0x9F7F, b"\x11" * filler))
    over = payload(common, extra=tlv(0x9F7F, b"\x11" * (filler + 3)))
    assert (len(at_limit), len(over)) == (limit, limit + 4)
    ok, too_long, too_long_bytes = runtime.run_many(body_read, [(at_limit,), (over,), (over.encode(),)])
    assert ok[:2] == ("ok", "6212345678901234")
    assert too_long[0] == "CpmError" and too_long_bytes[0] == "CpmError"


# --- garbage ---------------------------------------------------------------------------------------------

B64 = string.ascii_letters + string.digits + "+/="


def flip_chars(text, edits):
    chars = list(text)
    for pos, ch in edits:
        chars[pos % len(chars)] = ch
    return "".join(chars)


@pytest.mark.parametrize("kind", ["text", "bytes", "cpm-looking", "mutated"])
def test_garbage_is_cpm_error_only(runtime, kind):
    sample = load_vectors()["cpm"][0]["payload"]
    if kind == "text":
        examples = draw_examples(st.text(max_size=120))
    elif kind == "bytes":
        examples = draw_examples(st.binary(max_size=200))
    elif kind == "cpm-looking":
        examples = draw_examples(st.text(B64, max_size=200).map(lambda t: "hQVDUFYwM" + t))
    else:
        examples = draw_examples(
            st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(B64 + "!é\n")), min_size=1, max_size=3).map(
                lambda e: flip_chars(sample, e)
            )
        )
    results = runtime.run_many(body_read, [(t,) for t in examples])
    for text, got in zip(examples, results):
        if got[0] == "ok":  # a mutation can leave a well-formed code: then its account is still digits
            assert got[1].isdigit() and 12 <= len(got[1]) <= 19, (text, got)
        else:
            assert got[0] == "CpmError", (text, got)
    assert any(g[0] == "CpmError" for g in results)


# --- wallet payloads: tokenised track-2, ARQC, issuer tags in 63, templates, duplicates -----------------


def body_summary(text):
    """("ok", account, fields, top-level tags) or ("CpmError", message)."""
    from protocol import cpm

    try:
        objects = cpm.decode(text)
        return ("ok", cpm.account_number(objects), cpm.fields(objects), [o[0] for o in objects])
    except cpm.CpmError as e:
        return ("CpmError", str(e))


def test_wallet_payload_with_issuer_tags_in_63(runtime):
    token = "6231230000001234567"  # a 19-digit wallet token in track-2 equivalent data
    issuer = tlv(0x9F10, bytes.fromhex("07010103A00000010A010000000000")) + tlv(0x9F26, bytes(8)) + tlv(
        0x9F27, b"\x80") + tlv(0x9F36, b"\x01\x2c") + tlv(0x9F37, b"\x11\x22\x33\x44") + tlv(
        0xDF61, b"\x01") + tlv(0x9F63, bytes.fromhex("3030303030303030")) + tlv(0xBF0C, tlv(0xDF01, b"x"))
    text = payload(tlv(0x57, bcd(token + "D3012201")), tlv(0x5F24, b"\x30\x12\x31"), tlv(0x63, issuer),
                   extra=tlv(0xC1, b"proprietary"))
    got = runtime.run(body_summary, text)
    assert got[0] == "ok", got
    assert got[1] == token and got[3] == [0x85, 0x61, 0x62, 0xC1]
    assert got[2] == {"applications": [{"aid": "A000000333010101", "label": None}], "account_source": "57",
                      "expiry": "301231", "atc": 300, "cid": "80", "deferred": True}


def test_cid_types(runtime):
    base = tlv(0x57, bcd("6212345678901234D3012"))
    cases = [(b"\x80", True), (b"\x40", False), (b"\x00", False), (b"\x81", True)]
    texts = [payload(base, tlv(0x63, tlv(0x9F27, c))) for c, _ in cases] + [payload(base)]
    got = runtime.run_many(body_summary, [(t,) for t in texts])
    assert [g[2]["deferred"] for g in got] == [d for _, d in cases] + [False]
    assert got[4][2]["cid"] is None
    bad = runtime.run(body_summary, payload(base, tlv(0x63, tlv(0x9F27, b"\x80\x00"))))
    assert bad[0] == "CpmError" and "9F27" in bad[1]
    assert got[0][2]["expiry"] == "3012"  # YYMM from the track-2 equivalent data when 5F24 is absent


def test_template_rules(runtime):
    t2 = tlv(0x57, bcd("6212345678901234D3012"))
    cases = [
        payload(t2, tlv(0x5F24, b"\x30\x12\x31"), tlv(0x5F24, b"\x30\x12\x31")),  # repeated in 62
        payload(t2, tlv(0x63, tlv(0x9F36, b"\x00\x01") + tlv(0x9F36, b"\x00\x02"))),  # repeated in 63
        payload(t2, extra=tlv(0x62, t2)),  # two common data templates
        payload(t2, extra=tlv(0x85, b"CPV01")),  # format indicator twice
        base64.b64encode(tlv(0x85, b"CPV01") + bytes.fromhex("4201") + b"\x00").decode(),  # no 61
        payload(t2, tlv(0x1F63, b"")),  # 1F63 is a different (primitive) tag: kept
    ]
    got = runtime.run_many(body_summary, [(c,) for c in cases])
    assert [g[0] for g in got] == ["CpmError"] * 5 + ["ok"], got
    assert "repeated" in got[0][1] and "repeated" in got[1][1] and "repeated" in got[2][1]
    assert "61" in got[4][1]


def test_vector_fields(runtime):
    got = runtime.run(body_summary, load_vectors()["cpm"][0]["payload"])
    assert got[1] == "1234567890123458" and got[3] == [0x85, 0x61, 0x61, 0x62]
    assert got[2]["applications"] == [{"aid": "A0000000555555", "label": "Product1"},
                                      {"aid": "A0000000666666", "label": "Product2"}]
    assert got[2]["account_source"] == "5A" and got[2]["atc"] == 1 and got[2]["deferred"] is False
