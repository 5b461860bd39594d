"""Decider for numeric payment codes on both runtimes: recognised codes go ONLINE with their fleet token,
malformed ones decline with their own reason, the host's answer and the offline policy decide, and an
accepted code's record carries the path (EXT_PAYCODE) and never the code in clear."""

from protocol import crypto, record

SALT = bytes(range(16))
KEY = bytes(range(32, 64))
CODE = b"6222021234567890123"


def body_paycode(salt, key, code, answers, policy, cap):
    """Per answer (None, or (result, approval, reference)): outcome, reason, reason text, record bytes."""
    import struct

    from firmware import decision
    from protocol import crypto, record

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(key, bytes(12), p, a))
    out = []
    for line in (b"622202123456789012", b"1612345678901234567", b"62220212345678901234"):
        r = d.decide(line)
        out.append((r.outcome, r.reason, r.reason_text(), r.kind))
    first = d.decide(code + b"\r\n")
    out.append((first.outcome, first.kind, first.code[0], bytes(first.code[1]), first.amount))
    for ans in answers:
        msg = None if ans is None else {"result": ans[0], "approval": ans[1], "reference": ans[2]}
        r = d.decide_online(first, 77, msg)
        data = record.encode(b"TERM0001", 77, 0, r.kind, r.amount, 156,
                             record.ACCEPTED if r.outcome == decision.ACCEPT else record.DECLINED, r.reason, 1,
                             r.token, r.extensions)
        ext = record.decode(data)["ext"][record.EXT_PAYCODE]
        out.append((r.outcome, r.reason, r.reason_text(), struct.unpack("<BBI", ext[:6]), ext[6:], data))
    r = d.decide_offline(first, policy, cap)
    out.append((r.outcome, r.reason, r.reason_text(), len(r.extensions)))
    d.remember(first.token, None, 5, record.KIND_PAYMENT_CODE)
    again = d.decide(code)
    out.append((again.outcome, again.seq))
    return out


def test_payment_codes_online_and_offline(runtime):
    from firmware import decision

    answers = [(1, b"123456", b"000000000077"), (2, b"", b""), (3, b"", b""), None]
    got = runtime.run(body_paycode, SALT, KEY, CODE, answers, "decline", 0)
    kind = record.KIND_PAYMENT_CODE
    assert tuple(got[0]) == (decision.DECLINE, record.REASON_PAYCODE_MALFORMED, "bad pay code", kind)
    assert tuple(got[1])[:2] == (decision.DECLINE, record.REASON_UNKNOWN_FORMAT)
    assert tuple(got[2])[:2] == (decision.DECLINE, record.REASON_PAYCODE_MALFORMED)
    assert tuple(got[3]) == (decision.ONLINE, kind, 1, CODE, 200)
    approved, declined, unavailable, silent = got[4:8]
    assert tuple(approved[:3]) == (decision.ACCEPT, 0, "ok")
    assert tuple(approved[3]) == (record.PATH_ONLINE, 1, 77)
    assert approved[4] == b"123456000000000077"
    assert tuple(declined[:3]) == (decision.DECLINE, record.REASON_PAYCODE_DECLINED, "code declined")
    assert tuple(unavailable[:3]) == (decision.DECLINE, record.REASON_PAYCODE_NO_ANSWER, "no answer")
    assert tuple(silent[:3]) == (decision.DECLINE, record.REASON_PAYCODE_NO_ANSWER, "no answer")
    for row in got[4:8]:
        assert CODE not in row[5] and b"0123456789" not in row[5]  # the code never in the record
    assert tuple(got[8]) == (decision.DECLINE, record.REASON_PAYCODE_OFFLINE, "network needed", 0)
    assert tuple(got[9]) == (decision.ALREADY_PAID, 5)


def test_deferred_policy_seals_the_code_under_the_cap(runtime):
    from firmware import decision

    got = runtime.run(body_paycode, SALT, KEY, CODE, [], "defer", 200)
    assert tuple(got[4]) == (decision.ACCEPT, 0, "ok", 3)
    got = runtime.run(body_paycode, SALT, KEY, CODE, [], "defer", 199)
    assert tuple(got[4]) == (decision.DECLINE, record.REASON_PAYCODE_OVER_CAP, "over code limit", 0)


def test_record_token_is_the_fleet_token_of_the_digits():
    from firmware import decision
    from protocol import tokens

    d = decision.Decider(SALT).decide(CODE)
    assert d.token == tokens.token(SALT, CODE) and crypto is not None
