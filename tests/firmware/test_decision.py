"""firmware/decision.py on both runtimes: accepting a CPM payment code, declining garbage, recognising
a repeated presentation (same card token and transaction counter) as already paid, also after a reboot
(remember_record of a journal record), and a bounded memory of recent taps.

Payment codes are made here on CPython with protocol.cpm.encode or by hand (BER-TLV + base64); the
expected token is HMAC-SHA256(fleet token key, PAN)[:16] computed with hmac (protocol/tokens.py); a bare
key given to the Decider is token key version 1, which every accepted record names (EXT_TOKEN_KEY).
Each check a code must pass has its own reason (tests/firmware/test_decision_cpm.py); codes here pass
them all unless they are garbage.
"""

import base64
import hashlib
import hmac

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import cpm

SALT = bytes(range(100, 116))
OTHER_SALT = bytes(range(200, 216))
PAN = "6212345678901232"  # Luhn-valid
AID = bytes.fromhex("A000000333010101")


# --- bodies --------------------------------------------------------------------------------------


def body_decide(salt, line):
    """One line decided by a new Decider, as plain data (a small answer per line: see decide())."""
    from firmware import decision
    from protocol import crypto

    r = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a)).decide(line)
    return (
        r.outcome,
        r.reason,
        r.kind,
        r.token,
        r.amount,
        r.seq,
        r.atc,
        [tuple(e) for e in r.extensions],
        r.reason_text(),
    )


def body_constants():
    from firmware import decision
    from protocol import record

    return {
        "ACCEPT": decision.ACCEPT,
        "DECLINE": decision.DECLINE,
        "ALREADY_PAID": decision.ALREADY_PAID,
        "KIND_QR_CPM": record.KIND_QR_CPM,
        "UNKNOWN": record.REASON_UNKNOWN_FORMAT,
        "MALFORMED": record.REASON_MALFORMED,
        "NONE": record.REASON_NONE,
        "EXT_ATC": record.EXT_ATC,
        "EXT_AID": record.EXT_AID,
        "EXT_EMV_SEALED": record.EXT_EMV_SEALED,
        "EXT_EMV_DATA": record.EXT_EMV_DATA,
        "NO_ACCOUNT": record.REASON_CPM_NO_ACCOUNT,
        "BAD_PAN": record.REASON_CPM_BAD_PAN,
        "NO_EXPIRY": record.REASON_CPM_NO_EXPIRY,
        "RECENT": decision.RECENT,
        "FLAT_FARE": decision.FLAT_FARE,
    }


def body_tap_session(salt, lines, first_seq):
    """What the terminal does: decide, and for an accepted tap remember it under the next sequence."""
    from firmware import decision
    from protocol import crypto

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    seq = first_seq
    out = []
    for line in lines:
        r = d.decide(line)
        if r.outcome == decision.ACCEPT:
            d.remember(r.token, r.atc, seq)
            out.append(("accept", seq))
            seq += 1
        elif r.outcome == decision.ALREADY_PAID:
            out.append(("paid", r.seq))
        else:
            out.append(("decline", r.reason))
    return out


def body_after_reboot(salt, first_lines, later_lines):
    """Accept `first_lines` into journal records, then a new Decider (a reboot) learns them back
    with remember_record and decides `later_lines`."""
    from firmware import decision
    from protocol import crypto, record

    def sealer(plaintext, associated):
        return crypto.seal(bytes(32), bytes(12), plaintext, associated)

    before = decision.Decider(salt, sealer=sealer)
    records = []
    seq = 500
    for line in first_lines:
        r = before.decide(line)
        assert r.outcome == decision.ACCEPT, r.reason
        records.append(
            record.encode(
                b"TERM0001",
                seq,
                1700000000,
                r.kind,
                r.amount,
                decision.CURRENCY_CNY,
                record.ACCEPTED,
                record.REASON_NONE,
                decision.FARE_ID_FLAT,
                r.token,
                r.extensions,
            )
        )
        before.remember(r.token, r.atc, seq)
        seq += 1
    after = decision.Decider(salt, sealer=sealer)
    for data in records:
        after.remember_record(data)
    return [(r.outcome, r.seq) for r in [after.decide(line) for line in later_lines]]


def body_remember_many(salt, line, count):
    """Remember `count` other taps after one code: is it still known?  (RAM must not grow with count.)"""
    import gc

    from firmware import decision
    from protocol import crypto

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    first = d.decide(line)
    d.remember(first.token, first.atc, 1)
    gc.collect()
    free = gc.mem_free() if hasattr(gc, "mem_free") else None
    for i in range(count):
        d.remember(bytes([i & 0xFF]) * 16, bytes([i >> 8 & 0xFF, i & 0xFF]), i + 2)
    gc.collect()
    grown = None if free is None else free - gc.mem_free()
    return d.decide(line).outcome, grown


# --- helpers (CPython side) ---------------------------------------------------------------------------


def luhn_complete(body):
    """`body` followed by its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


def token(key, pan):
    return hmac.new(key, pan.encode(), hashlib.sha256).digest()[:16]


KEY_EXT = (28, b"\x01\x00\x00\x00")  # record.EXT_TOKEN_KEY: token key version 1


def tlv(tag, value):
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big") + bytes([len(value)]) + value


def cpm_text(*common):
    raw = tlv(0x85, b"CPV01") + tlv(0x61, tlv(0x4F, AID)) + tlv(0x62, b"".join(common))
    return base64.b64encode(raw).decode()


def constants(runtime):
    return runtime.run(body_constants)


FIELDS = ("outcome", "reason", "kind", "token", "amount", "seq", "atc", "ext", "text")


def decide(runtime, salt, lines):
    """Decisions for `lines` as dicts, run as one batch (one line per call keeps each answer small:
    the MicroPython harness has to build each answer's literal text in the 128k heap)."""
    return [dict(zip(FIELDS, r)) for r in runtime.run_many(body_decide, [(salt, line) for line in lines])]


# --- accept ------------------------------------------------------------------------------------------------


def test_accepts_a_cpm_code(runtime):
    c = constants(runtime)
    assert c["FLAT_FARE"] == 200  # 2.00 yuan, the fare of the first slice
    cryptogram = bytes.fromhex("C0FFEE0123456789")
    line = cpm.encode(PAN, atc=0x0102, aid=AID, cryptogram=cryptogram)
    got, got_bytes = decide(runtime, SALT, [line, line.encode()])
    assert got == got_bytes  # the scanner may hand over bytes or text
    assert got["outcome"] == c["ACCEPT"]
    assert got["kind"] == c["KIND_QR_CPM"] and got["reason"] == c["NONE"]
    assert got["amount"] == 200
    assert got["token"] == token(SALT, PAN)
    assert len(got["token"]) == 16
    assert PAN.encode() not in got["token"] and bytes.fromhex(PAN) not in got["token"]
    assert got["atc"] == b"\x01\x02"
    assert [tag for tag, _ in got["ext"]] == [KEY_EXT[0], c["EXT_ATC"], c["EXT_AID"], c["EXT_EMV_SEALED"],
                                              c["EXT_EMV_DATA"]]
    assert got["ext"][:3] == [KEY_EXT, (c["EXT_ATC"], b"\x01\x02"), (c["EXT_AID"], AID)]
    sealed = got["ext"][3][1]
    assert PAN.encode() not in sealed and bytes.fromhex(PAN) not in sealed and cryptogram not in sealed


def test_token_differs_per_key(runtime):
    line = cpm.encode(PAN)
    a = decide(runtime, SALT, [line])[0]
    b = decide(runtime, OTHER_SALT, [line])[0]
    assert a["token"] != b["token"]
    assert b["token"] == token(OTHER_SALT, PAN)


def test_a_code_with_only_a_pan_is_declined(runtime):
    c = constants(runtime)
    pan = "6212345678901234569"
    line = cpm_text(tlv(0x5A, bytes.fromhex(pan + "F")))
    got = decide(runtime, SALT, [line])[0]
    assert (got["outcome"], got["reason"]) == (c["DECLINE"], c["NO_EXPIRY"]) and got["token"] == token(SALT, pan)
    assert got["ext"] == [] and got["amount"] == 0


def test_accepts_generated_codes(runtime):
    c = constants(runtime)
    examples = draw_examples(
        st.tuples(
            st.integers(11, 18).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)), st.integers(0, 0xFFFF)
        ),
        count=60,
    )
    examples = [(luhn_complete(pan), atc) for pan, atc in examples]
    lines = [cpm.encode(pan, atc=atc, cryptogram=bytes(range(8))) for pan, atc in examples]
    results = decide(runtime, SALT, lines)
    for (pan, atc), got in zip(examples, results):
        assert got["outcome"] == c["ACCEPT"]
        assert got["token"] == token(SALT, pan)
        assert got["atc"] == atc.to_bytes(2, "big")


# --- decline -----------------------------------------------------------------------------------------------


def _known_prefix(t):
    """Text a scanner line format claims: a CPM code ("hQVDUFYwM"), a signed ticket ("ZT1."), a ride code
    ("ZR1.") or a numeric payment code (digits only).  Hypothesis draws string constants of loaded modules,
    so such lines do come up (and are refused for their own reasons, tested elsewhere)."""
    t = t.encode("utf-8", "surrogatepass") if isinstance(t, str) else t
    digits = t.rstrip(b"\r\n")
    return t[:9] == b"hQVDUFYwM" or t[:4] in (b"ZT1.", b"ZR1.") or (digits.isdigit() and digits.isascii())


def test_garbage_is_unknown_format(runtime):
    c = constants(runtime)
    lines = draw_examples(st.one_of(st.text(max_size=80), st.binary(max_size=80)).filter(
        lambda t: not _known_prefix(t)), count=100)
    lines += ["", b"", "https://example.com/pay?x=1", "0002010102111529123456", "hQVDUFYw"]
    for got in decide(runtime, SALT, lines):
        assert (got["outcome"], got["reason"]) == (c["DECLINE"], c["UNKNOWN"])
        assert got["token"] is None and got["amount"] == 0


def test_cpm_looking_garbage_is_malformed(runtime):
    c = constants(runtime)
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    lines = draw_examples(st.text(b64 + "!é", max_size=120).map(lambda t: "hQVDUFYwM" + t), count=100)
    lines += [
        "hQVDUFYwM",
        cpm.encode(PAN)[:-8],  # cut
        cpm.encode(PAN)[:-4] + "\xff\xfe==",
        (cpm.encode(PAN)[:40] + "\xe9" * 10).encode("utf-8"),
    ]
    for line, got in zip(lines, decide(runtime, SALT, lines)):
        assert (got["outcome"], got["reason"]) == (c["DECLINE"], c["MALFORMED"]), (line, got)
        assert got["kind"] == c["KIND_QR_CPM"] and got["amount"] == 0
        assert got["text"] == "bad payment code"
    no_account, short = decide(runtime, SALT, [cpm_text(tlv(0x5F20, b"NO PAN")), cpm_text(tlv(0x5A, bytes.fromhex(
        "62123456789F")))])
    assert (no_account["reason"], no_account["token"]) == (c["NO_ACCOUNT"], None)  # well-formed, no account
    assert (short["reason"], short["token"]) == (c["BAD_PAN"], None)  # an 11-digit PAN


# --- already paid --------------------------------------------------------------------------------------------


def test_same_code_again_is_already_paid(runtime):
    a1 = cpm.encode(PAN, atc=1)
    a2 = cpm.encode(PAN, atc=2)  # the same card's next code
    b1 = cpm.encode("6299999999999998", atc=1)  # another card, same counter
    got = runtime.run(body_tap_session, SALT, [a1, a1, b1, a2, a1.encode(), b1, a2, "junk"], 41)
    assert got == [
        ("accept", 41),
        ("paid", 41),
        ("accept", 42),
        ("accept", 43),
        ("paid", 41),
        ("paid", 42),
        ("paid", 43),
        ("decline", constants(runtime)["UNKNOWN"]),
    ]


def test_already_paid_after_reboot_via_records(runtime):
    c = constants(runtime)
    first = [cpm.encode(PAN, atc=7), cpm.encode("6211111111115", atc=7), cpm.encode("6299999999999998", atc=9)]
    later = first + [cpm.encode(PAN, atc=8)]
    got = runtime.run(body_after_reboot, SALT, first, later)
    assert got == [(c["ALREADY_PAID"], 500), (c["ALREADY_PAID"], 501), (c["ALREADY_PAID"], 502), (c["ACCEPT"], 0)]


def test_recent_taps_are_bounded(runtime):
    c = constants(runtime)
    recent = c["RECENT"]
    assert 8 <= recent <= 1000
    extra = 5
    lines = [cpm.encode(PAN, atc=n) for n in range(recent + extra)]
    # the whole list once (all accepted), then again: only the newest `recent` are still known
    got = runtime.run(body_tap_session, SALT, lines + lines[::-1], 1)
    first, second = got[: len(lines)], got[len(lines) :][::-1]
    assert first == [("accept", n + 1) for n in range(len(lines))]
    assert second[extra:] == [("paid", n + 1) for n in range(extra, len(lines))]
    # the forgotten ones are accepted again (a fare charged twice is the cost of a bounded memory)
    assert all(kind == "accept" for kind, _ in second[:extra])


def test_recent_memory_does_not_grow(runtime):
    line = cpm.encode(PAN, atc=3)
    outcome, grown = runtime.run(body_remember_many, SALT, line, 20000)
    assert outcome == constants(runtime)["ACCEPT"]  # long forgotten
    if grown is not None:
        assert grown < 16 * 1024, grown  # 20000 taps would take ~1 MB if every one were kept
