"""protocol/cpm.py against EMV QRCPS on both runtimes: the template rules (85, one or more 61 each with
4F, an optional 62, account data and 63 in a 61 or in 62), the checks a terminal makes before accepting
a code offline (one reason each), the data a record keeps, real-world codes, and hostile input that
must end in CpmError or a reason, never in another exception.

Payloads are built here from BER-TLV bytes and base64 on CPython.
"""

import base64

import pytest
import realworld
from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import record

PAN = "6228480000000000018"  # Luhn-valid
AID = bytes.fromhex("A000000333010101")
NOW = 1796083200  # 2026-12-01 UTC
CRYPTO = bytes.fromhex("1122334455667788")


# --- bodies --------------------------------------------------------------------------------------


def body_examine(text, now):
    """("ok", account or None, check reason, payment tags) or ("CpmError", message)."""
    from protocol import cpm, record

    try:
        objects = cpm.decode(text)
        tags = cpm.payment_data(objects)
    except cpm.CpmError as e:
        return ("CpmError", str(e))
    reason = cpm.check(tags, now)
    try:
        cpm.fields(objects)  # the tools' summary: CpmError only for a malformed 9F27
    except cpm.CpmError:
        assert reason != record.REASON_NONE, reason
    try:
        account = cpm.account_number(tags)
    except cpm.CpmError:
        account = None
    return ("ok", account, reason, tags)


def body_record_parts(text):
    from protocol import cpm

    tags = cpm.payment_data(cpm.decode(text))
    return cpm.tlv_of(tags, cpm.CLEAR_TAGS), cpm.tlv_of(tags, cpm.SEALED_TAGS)


# --- helpers (CPython side) ------------------------------------------------------------------------


def tlv(tag, value):
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])
    return tag_bytes + length + value


def bcd(digits):
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def b64(raw):
    return base64.b64encode(raw).decode()


def transparent(cid=b"\x80", atc=b"\x00\x2a", cryptogram=CRYPTO, **extra):
    parts = {0x9F26: cryptogram, 0x9F27: cid, 0x9F10: bytes.fromhex("07010103A00000"), 0x9F36: atc,
             0x82: b"\x00\x00", 0x9F37: b"\x01\x02\x03\x04"}
    parts.update({int(k[1:], 16): v for k, v in extra.items()})
    return tlv(0x63, b"".join(tlv(t, v) for t, v in parts.items() if v is not None))


def unionpay_like(track2=PAN + "D3012201", **changes):
    """A code laid out as UnionPay wallets show it: everything in one 61, no 62."""
    app = tlv(0x4F, AID) + tlv(0x57, bcd(track2)) + tlv(0x5F34, b"\x01") + transparent(**changes)
    return b64(tlv(0x85, b"CPV01") + tlv(0x61, app))


# --- template rules --------------------------------------------------------------------------------------


def test_common_data_template_is_optional_and_account_data_may_sit_in_61_or_62(runtime):
    in_61_with_5a = b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID) + tlv(0x5A, bcd(PAN)) + tlv(
        0x5F24, b"\x30\x12\x31") + transparent()))
    in_62 = b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID)) + tlv(0x62, tlv(0x57, bcd(PAN + "D3012")) + tlv(
        0x64, tlv(0x9F26, CRYPTO) + tlv(0x9F27, b"\x80") + tlv(0x9F36, b"\x00\x01"))))
    split = b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID) + transparent()) + tlv(0x62, tlv(
        0x5A, bcd(PAN)) + tlv(0x5F24, b"\x30\x12\x31")))
    got = runtime.run_many(body_examine, [(unionpay_like(), NOW), (in_61_with_5a, NOW), (in_62, NOW), (split, NOW)])
    assert [g[:3] for g in got] == [("ok", PAN, 0)] * 4, got
    assert got[0][3][0x5F34] == b"\x01" and got[0][3][0x4F] == AID


def test_first_application_template_pays_and_its_data_wins_over_62(runtime):
    first = tlv(0x61, tlv(0x4F, AID) + tlv(0x57, bcd(PAN + "D3012")) + transparent(atc=b"\x00\x01"))
    second = tlv(0x61, tlv(0x4F, bytes.fromhex("A0000000031010")) + transparent(atc=b"\x00\x02"))
    common = tlv(0x62, tlv(0x5A, bcd("6212345678901234")) + tlv(0x63, tlv(0x9F36, b"\x00\x03")))
    got = runtime.run(body_examine, b64(tlv(0x85, b"CPV01") + first + second + common), NOW)
    assert got[0] == "ok", got
    tags = got[3]
    assert tags[0x4F] == AID and tags[0x9F36] == b"\x00\x01" and tags[0x57] == bcd(PAN + "D3012")
    assert got[1] == "6212345678901234"  # a 5A (here in 62) is the account, as EMV QRCPS lists it first


def test_structure_errors(runtime):
    fmt = tlv(0x85, b"CPV01")
    app = tlv(0x4F, AID) + tlv(0x57, bcd(PAN + "D3012"))
    cases = [
        (b64(fmt + tlv(0x62, app[10:])), "61"),  # no application template
        (b64(fmt + tlv(0x61, app[10:])), "4F"),  # application template without ADF name
        (b64(fmt + tlv(0x61, tlv(0x4F, b"\xa0\x00\x00\x03")) + app[10:]), "4F"),  # AID of 4 bytes
        (b64(fmt + tlv(0x61, tlv(0x4F, bytes(17)))), "4F"),  # AID of 17 bytes
        (b64(fmt + bytes.fromhex("6103") + b"abc"), "TLV"),  # 61..64 are constructed tags: content is TLV
        (b64(fmt + tlv(0x61, app + bytes.fromhex("6301") + b"x")), "TLV"),
        (b64(fmt + tlv(0x61, app) + tlv(0x62, bytes.fromhex("6401") + b"x")), "TLV"),
        (b64(tlv(0x61, app) + fmt), "CPV01"),  # format indicator not first
        (b64(fmt + tlv(0x61, app) + tlv(0x61, app) + tlv(0x62, b"") + tlv(0x62, b"")), "repeated"),
    ]
    got = runtime.run_many(body_examine, [(text, NOW) for text, _ in cases])
    for (text, word), result in zip(cases, got):
        assert result[0] == "CpmError" and word in result[1], (text, result)


def test_proprietary_tags_are_kept(runtime):
    app = tlv(0x4F, AID) + tlv(0x57, bcd(PAN + "D3012")) + transparent(tDF61=b"\x01", tC1=b"tag") + tlv(
        0xBF0C, tlv(0xDF01, b"x"))
    got = runtime.run(body_examine, b64(tlv(0x85, b"CPV01") + tlv(0x61, app) + tlv(0xC2, b"top")), NOW)
    assert got[:3] == ("ok", PAN, 0) and got[3][0xDF61] == b"\x01" and got[3][0xC1] == b"tag"
    assert 0xDF01 not in got[3]  # only the transparent templates hold payment data


# --- the terminal's checks: one reason each ----------------------------------------------------------


CHECKS = [
    (unionpay_like(), NOW, record.REASON_NONE),
    (unionpay_like(), None, record.REASON_NONE),
    (unionpay_like(track2="6228480000000000017D3012"), NOW, record.REASON_CPM_BAD_PAN),  # Luhn
    (unionpay_like(track2="62284800000D3012"), NOW, record.REASON_CPM_BAD_PAN),  # 11 digits
    (unionpay_like(track2=PAN + "D2611"), NOW, record.REASON_CPM_EXPIRED),  # November 2026
    (unionpay_like(track2=PAN + "D2612"), NOW, record.REASON_NONE),  # valid to the end of December
    (unionpay_like(track2=PAN + "D1012"), None, record.REASON_NONE),  # no clock: the issuer checks expiry
    (unionpay_like(track2=PAN + "D1012"), NOW, record.REASON_CPM_EXPIRED),
    (unionpay_like(track2=PAN + "D3013"), NOW, record.REASON_CPM_NO_EXPIRY),  # month 13
    (unionpay_like(track2=PAN + "D"), NOW, record.REASON_CPM_NO_EXPIRY),
    (unionpay_like(t5F24=b"\x26\x11\x30"), NOW, record.REASON_CPM_EXPIRED),  # 5F24 wins over track 2
    (unionpay_like(t5F24=b"\x26\x12\x01"), NOW, record.REASON_NONE),  # its last day
    (unionpay_like(cryptogram=None), NOW, record.REASON_CPM_NO_CRYPTOGRAM),
    (unionpay_like(cryptogram=bytes(7)), NOW, record.REASON_CPM_NO_CRYPTOGRAM),
    (unionpay_like(cid=None), NOW, record.REASON_CPM_NO_CID),
    (unionpay_like(cid=b"\x80\x00"), NOW, record.REASON_CPM_NO_CID),
    (unionpay_like(cid=b"\x00"), NOW, record.REASON_CPM_AAC),
    (unionpay_like(cid=b"\x40"), NOW, record.REASON_CPM_NOT_ARQC),  # TC: not authorisable later
    (unionpay_like(cid=b"\xc0"), NOW, record.REASON_CPM_NOT_ARQC),  # RFU
    (unionpay_like(cid=b"\x81"), NOW, record.REASON_NONE),  # ARQC with reason bits
    (unionpay_like(atc=None), NOW, record.REASON_CPM_NO_ATC),
    (unionpay_like(atc=b"\x01"), NOW, record.REASON_CPM_NO_ATC),
    (unionpay_like(t9F10=bytes(33)), NOW, record.REASON_MALFORMED),
    (b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID) + transparent())), NOW, record.REASON_CPM_NO_ACCOUNT),
    (b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID) + tlv(0x5A, bcd(PAN)))), NOW,
     record.REASON_CPM_NO_EXPIRY),  # a PAN and nothing else
    (b64(tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID) + tlv(0x5A, bcd(PAN)) + tlv(0x5F24, b"\x30\x12\x31"))),
     NOW, record.REASON_CPM_NO_CRYPTOGRAM),
]


def test_each_check_has_its_reason(runtime):
    got = runtime.run_many(body_examine, [(text, now) for text, now, _ in CHECKS])
    assert [g[2] for g in got] == [reason for _, _, reason in CHECKS], got


def test_reason_codes_are_assigned_and_have_short_texts():
    codes = [record.REASON_CPM_BAD_PAN, record.REASON_CPM_EXPIRED, record.REASON_CPM_NO_CRYPTOGRAM,
             record.REASON_CPM_NO_CID, record.REASON_CPM_AAC, record.REASON_CPM_NOT_ARQC, record.REASON_CPM_NO_ATC,
             record.REASON_CPM_NO_ACCOUNT, record.REASON_CPM_NO_EXPIRY]
    assert sorted(codes) == list(range(30, 39))
    texts = [record.REASON_TEXT[c] for c in codes]
    assert len(set(texts)) == len(texts) and all(len(t) <= 16 for t in texts)


def test_record_parts_split_clear_from_sealed(runtime):
    clear, sealed = runtime.run(body_record_parts, unionpay_like(t5F24=b"\x30\x12\x31"))
    assert clear == (tlv(0x9F27, b"\x80") + tlv(0x9F36, b"\x00\x2a") + tlv(0x9F37, b"\x01\x02\x03\x04")
                     + tlv(0x82, b"\x00\x00") + tlv(0x9F10, bytes.fromhex("07010103A00000")) + tlv(0x5F34, b"\x01"))
    assert sealed == tlv(0x57, bcd(PAN + "D3012201")) + tlv(0x5F24, b"\x30\x12\x31") + tlv(0x9F26, CRYPTO)


# --- real-world codes ---------------------------------------------------------------------------------


@pytest.mark.skipif(realworld.DIR is None, reason=realworld.ABSENT)
def test_every_real_world_cpm_code_decodes(runtime):
    codes = realworld.load("qr.json")["cpm"]
    names = sorted(codes)
    got = runtime.run_many(body_examine, [(codes[n]["payload"], NOW) for n in names])
    for name, result in zip(names, got):
        assert result[0] == "ok", (name, result)
        want = codes[name]["decoded"]["apps"][0]
        assert result[3][0x4F].hex().upper() == want["aid"], name
        if "track2" in want:
            assert result[3][0x57].hex().upper().rstrip("F") == want["track2"], name
    by_name = dict(zip(names, got))
    unionpay = by_name["unionpay_emv_qrcode_lib_test"]
    assert unionpay[1] == "6263600100713672" and unionpay[2] == record.REASON_CPM_EXPIRED  # expired 2023-12
    assert unionpay[3][0x9F27] == b"\x80" and unionpay[3][0x9F36] == b"\x11\x22"
    assert runtime.run(body_examine, codes["unionpay_emv_qrcode_lib_test"]["payload"], 1700000000)[2] == 0
    assert by_name["qcat_transit_ticket"][2] == record.REASON_CPM_NO_ACCOUNT  # a ticket, not a payment


# --- hostile input ---------------------------------------------------------------------------------------


def mutate(raw, edits):
    data = bytearray(raw)
    for pos, value in edits:
        if value < 0:
            del data[pos % len(data):]
        else:
            data[pos % len(data)] = value
    return b64(bytes(data))


@pytest.mark.parametrize("kind", ["mutated", "structured"])
def test_hostile_codes_end_in_cpm_error_or_a_reason(runtime, kind):
    raw = base64.b64decode(unionpay_like(t5F24=b"\x30\x12\x31"))
    if kind == "mutated":
        examples = draw_examples(st.lists(st.tuples(st.integers(0, 500), st.integers(-1, 255)), min_size=1,
                                          max_size=4).map(lambda e: mutate(raw, e)))
    else:
        leaf = st.tuples(st.sampled_from([0x4F, 0x57, 0x5A, 0x5F24, 0x9F26, 0x9F27, 0x9F36, 0x9F10, 0x63, 0x64, 0xC1]),
                         st.binary(max_size=24)).map(lambda tv: tlv(*tv))
        body = st.lists(leaf, max_size=6).map(b"".join)
        templates = st.lists(st.tuples(st.sampled_from([0x61, 0x62, 0x63]), body).map(lambda tv: tlv(*tv)),
                             max_size=3).map(b"".join)
        examples = draw_examples(templates.map(lambda t: b64(tlv(0x85, b"CPV01") + t)))
    results = runtime.run_many(body_examine, [(t, NOW) for t in examples])
    valid = set(range(0, 7)) | set(range(30, 39))
    for text, got in zip(examples, results):
        assert got[0] in ("ok", "CpmError"), (text, got)
        if got[0] == "ok":
            assert got[2] in valid, (text, got)
            assert got[2] != 0 or (got[1] is not None and len(got[3][0x9F26]) == 8), (text, got)


def test_an_expiry_date_5f24_of_another_length_is_no_date(runtime):
    texts = [unionpay_like(t5F24=b"\x30\x12"), unionpay_like(t5F24=b"\x30\x12\x31\x00")]
    got = runtime.run_many(body_examine, [(t, NOW) for t in texts])
    assert [g[2] for g in got] == [record.REASON_CPM_NO_EXPIRY] * 2
