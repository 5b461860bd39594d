"""Decider.decide for EMV QRCPS payment codes on both runtimes: each offline check declines with its own
reason (Luhn, expiry against the board clock, 9F26, 9F27 AAC / TC / missing, ATC), a board whose clock was
never set still takes fares (the issuer checks expiry later), and an accepted code's record keeps the
deferred-authorisation data: the cryptogram context in clear, the account and cryptogram sealed.

Codes are made on CPython by host_sim's wallet emulator (real cryptograms) or protocol.cpm.encode."""

import base64

from host_sim.emulators import wallet
from protocol import cpm, crypto, record, tlv

SALT = bytes(range(16))
KEY = bytes(range(32, 64))
NOW = 1796083200  # 2026-12-01 UTC
PAN = "6228480000000000018"


def body_decide(salt, key, lines, now):
    """(outcome, reason, reason text, token, record bytes or None) per line."""
    from firmware import decision
    from protocol import crypto, record

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(key, bytes(12), p, a))
    out = []
    for line in lines:
        r = d.decide(line, now)
        data = None
        if r.outcome == decision.ACCEPT:
            data = record.encode(b"TERM0001", 1, now or 0, r.kind, r.amount, 156, record.ACCEPTED, 0, 1, r.token,
                                 r.extensions)
        out.append((r.outcome, r.reason, r.reason_text(), r.token, data))
    return out


def decide(runtime, lines, now=NOW):
    return runtime.run(body_decide, SALT, KEY, lines, now)


def code(**kw):
    kw.setdefault("cryptogram", bytes.fromhex("0102030405060708"))
    kw.setdefault("pan", PAN)
    return cpm.encode(kw.pop("pan"), **kw)


def test_each_check_declines_with_its_reason(runtime):
    cases = [
        (code(), record.REASON_NONE),
        (code(pan="6228480000000000017"), record.REASON_CPM_BAD_PAN),
        (code(expiry="2611"), record.REASON_CPM_EXPIRED),
        (code(expiry="2699"), record.REASON_CPM_NO_EXPIRY),
        (code(cryptogram=b"\x01\x02"), record.REASON_CPM_NO_CRYPTOGRAM),
        (code(cid=b""), record.REASON_CPM_NO_CID),
        (code(cid=b"\x00"), record.REASON_CPM_AAC),
        (code(cid=b"\x40"), record.REASON_CPM_NOT_ARQC),
        (code(cid=b"\x80", iad=bytes(40)), record.REASON_MALFORMED),
    ]
    got = decide(runtime, [c for c, _ in cases])
    assert [g[1] for g in got] == [r for _, r in cases], got
    assert [g[0] for g in got] == [1] + [2] * (len(cases) - 1)
    assert [g[2] for g in got[1:8]] == ["bad card number", "card expired", "no expiry date", "no cryptogram",
                                        "no code type", "code declined", "code not online"]
    assert all(g[3] is not None for g in got[:-1])  # the account was read: the decline keeps its token


def test_forged_codes_of_the_issue_and_a_code_without_counter_are_declined(runtime):
    """Non-Luhn PAN, expiry 2010, zero cryptogram, CID 00 (accepted before), and a code without its ATC."""
    no_atc = cpm.encode(PAN, cryptogram=bytes(range(8)))
    raw = bytearray(base64.b64decode(no_atc))
    at = raw.find(b"\x9f\x36\x02")
    raw[at : at + 5] = b"\xdf\x36\x02\x00\x01"  # the counter under a proprietary tag
    cases = [cpm.encode("6212345678901234567", expiry="1012", cryptogram=bytes(8), cid=b"\x00"),
             cpm.encode(PAN, expiry="1012", cryptogram=bytes(8), cid=b"\x00"),
             base64.b64encode(bytes(raw)).decode()]
    got = decide(runtime, cases)
    assert [g[1] for g in got] == [record.REASON_CPM_BAD_PAN, record.REASON_CPM_EXPIRED, record.REASON_CPM_NO_ATC]


def test_a_board_without_a_valid_clock_leaves_expiry_to_the_issuer(runtime):
    expired = code(expiry="2001")
    for now in (None, 0, 1000000):
        got = decide(runtime, [expired, code(cid=b"\x00")], now)
        assert [g[1] for g in got] == [record.REASON_NONE, record.REASON_CPM_AAC], (now, got)
    assert decide(runtime, [expired], 1704067200)[0][1] == record.REASON_CPM_EXPIRED  # a clock set: checked


def test_an_accepted_code_keeps_the_deferred_authorisation_data(runtime):
    text = wallet.code("unionpay-card", atc=77, un=b"\x0a\x0b\x0c\x0d")
    (outcome, reason, _, token, data), = decide(runtime, [text])
    assert (outcome, reason) == (1, 0)
    rec = record.decode(data)
    assert rec["kind"] == record.KIND_QR_CPM and rec["ext"][record.EXT_ATC] == b"\x00\x4d"
    assert rec["ext"][record.EXT_AID] == wallet.ACCOUNTS["unionpay-card"][2]
    tags = cpm.payment_data(cpm.decode(text))
    clear = {t: v for t, v, _ in tlv.decode(rec["ext"][record.EXT_EMV_DATA])}
    assert clear == {t: tags[t] for t in (0x9F27, 0x9F36, 0x9F37, 0x82, 0x9F10, 0x5F34)}
    sealed = {t: v for t, v, _ in tlv.decode(crypto.unseal(KEY, rec["ext"][record.EXT_EMV_SEALED], token))}
    assert sealed == {0x57: tags[0x57], 0x9F26: tags[0x9F26]}
    assert PAN.encode() not in data and tags[0x57] not in data and tags[0x9F26] not in data
    assert len(data) <= record.MAX_SIZE


def test_the_biggest_code_a_record_keeps_fits_in_one_record(runtime):
    pan = "6228480000000000018"
    raw_text = cpm.encode(pan, cryptogram=bytes(range(8)), iad=bytes(32), aid=bytes(16), psn=b"\x01", aip=b"\x00\x00")
    raw = base64.b64decode(raw_text)
    common = raw.index(b"\x62")  # add a 5A and a 5F24 in front of the track 2
    extra = tlv.encode(0x5A, bytes.fromhex(pan + "F")) + tlv.encode(0x5F24, b"\x30\x12\x31")
    body = tlv.decode(raw[common:])[0][1]
    text = base64.b64encode(raw[:common] + tlv.encode(0x62, extra + body)).decode()
    (outcome, _, _, _, data), = decide(runtime, [text])
    assert outcome == 1 and len(data) <= record.MAX_SIZE, len(data or b"")
