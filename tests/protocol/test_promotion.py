"""protocol/promotion.py on both runtimes: the "promotions" section of a profile checked (each mistake
refused with its reason, through profile.parse), the draw against vectors computed here with Python's
hmac, the chance threshold, discounts fixed and by percentage with their cap, and the audit of a
record's discount."""

import hashlib
import hmac
import json
import struct

import pytest

from protocol import record

DEVICE_KEY = bytes(range(32))
TERMINAL = bytes.fromhex("5642000001000000")
TOKEN = bytes(range(16, 32))
GOOD = {"id": 7, "kinds": ["qr_cpm", "ride_code"], "profiles": ["bus"], "chance_ppm": 100000, "discount_fen": 50,
        "terminal_daily_fen": 2000, "programme_daily_fen": 100000, "from": "2026-12-01", "until": "2026-12-31"}


def profile_body(*programmes):
    return json.dumps({"profile": "bus", "group": "route-7", "promotions": list(programmes)}).encode()


def body_parse(body):
    """profile.parse of `body`: ("ok", compiled programmes) or ("refused", the reason)."""
    from protocol import profile, promotion

    try:
        got = profile.parse(body)
    except profile.ProfileError as e:
        return ("refused", str(e))
    return ("ok", [list(p) for p in promotion.programmes(got["promotions"])])


def body_draws(key_source, cases):
    """[draw, granted at each chance] of (pid, terminal, seq, time, kind, fare, token, chances) cases."""
    from protocol import promotion

    key = promotion.key_of(key_source)
    out = []
    for pid, terminal, seq, t, kind, fare, token, chances in cases:
        value = promotion.draw(key, pid, terminal, seq, t, kind, fare, token)
        out.append([value, [promotion.granted(value, c) for c in chances]])
    return out


def body_discounts(programme, fares):
    from protocol import promotion

    p = promotion.compile_one(programme)
    return [promotion.discount_of(p, f) for f in fares]


def body_audit(key_source, raw, programme, product, day):
    from protocol import promotion, record

    p = None if programme is None else promotion.compile_one(programme)
    return promotion.audit(promotion.key_of(key_source), record.decode(raw), p, product, day)


def expected_draw(pid, terminal, seq, t, kind, fare, token):
    key = hmac.new(DEVICE_KEY, b"zf1 promo" + b"\x01", hashlib.sha256).digest()  # crypto.derive, one block
    msg = struct.pack("<H8sIIBI16s", pid, terminal, seq, t, kind, fare, token)
    return int.from_bytes(hmac.new(key, msg, hashlib.sha256).digest()[:4], "big")


# --- tests ---------------------------------------------------------------------------------------


def test_a_good_section_compiles(runtime):
    pct = dict(GOOD, id=8, discount_pct=20, max_fen=100, profiles=["bus", "scenic"])
    del pct["discount_fen"]
    status, progs = runtime.run(body_parse, profile_body(GOOD, pct))
    assert status == "ok"
    dec1, dec31 = 20788, 20818  # 2026-12-01 and 2026-12-31, days since 1970
    assert progs[0] == [7, (record.KIND_QR_CPM, record.KIND_RIDE_CODE), ("bus",), 100000, 50, 0, 0, 2000, 100000,
                        dec1, dec31]
    assert progs[1][4:7] == [0, 20, 100] and progs[1][2] == ("bus", "scenic")


@pytest.mark.parametrize("change, reason", [
    ({"kinds": ["contactless"]}, "kind 'contactless' is not eligible: a contactless card signs the full fare"),
    ({"kinds": ["payment_code"]}, "is not eligible: a payment code is authorised online"),
    ({"kinds": ["cash"]}, "unknown kind 'cash'"),
    ({"kinds": []}, "kinds must be a non-empty list"),
    ({"profiles": ["ferry"]}, "unknown profile 'ferry'"),
    ({"chance_ppm": 0}, "chance_ppm 0 is outside 1..1000000"),
    ({"chance_ppm": 1000001}, "chance_ppm 1000001 is outside"),
    ({"discount_pct": 10}, "needs discount_fen or discount_pct, not both"),
    ({"max_fen": 10}, "max_fen goes with discount_pct only"),
    ({"discount_fen": 0}, "discount_fen 0 is outside"),
    ({"terminal_daily_fen": 200001}, "terminal_daily_fen is over programme_daily_fen"),
    ({"from": "2026-13-01"}, "from and until must be dates"),
    ({"until": "2026-02-30"}, "from and until must be dates"),
    ({"until": "2026-11-30"}, "ends before it starts"),
    ({"id": 0}, "id 0 is outside 1..65535"),
    ({"budget": 5}, "unknown field 'budget'"),
])
def test_each_mistake_is_refused_with_its_reason(runtime, change, reason):
    programme = dict(GOOD, programme_daily_fen=200000, **change) if "terminal_daily_fen" in change else \
        dict(GOOD, **change)
    status, why = runtime.run(body_parse, profile_body(programme))
    assert status == "refused" and why.startswith("promotions: ") and reason in why, why


def test_section_shape_is_checked(runtime):
    assert runtime.run(body_parse, profile_body(GOOD, GOOD)) == ("refused", "promotions: programme id 7 twice")
    assert runtime.run(body_parse, profile_body(*[dict(GOOD, id=i) for i in range(1, 10)]))[0] == "refused"
    body = json.dumps({"profile": "bus", "group": "g", "promotions": {"id": 1}}).encode()
    assert runtime.run(body_parse, body) == ("refused", "promotions: a list of 1..8 programmes")
    assert runtime.run(body_parse, profile_body("x")) == ("refused", "promotions: a programme is not an object")


def test_draw_vectors_and_the_chance_threshold(runtime):
    cases = [(7, TERMINAL, 1, 1796000000, record.KIND_QR_CPM, 200, TOKEN),
             (7, TERMINAL, 2, 1796000000, record.KIND_QR_CPM, 200, TOKEN),
             (8, TERMINAL, 1, 1796000000, record.KIND_QR_CPM, 200, TOKEN),
             (7, bytes(8), 65536, 0, record.KIND_RIDE_CODE, 1, bytes(16))]
    want = [expected_draw(*c) for c in cases]
    assert len(set(want)) == 4
    got = runtime.run(body_draws, DEVICE_KEY, [list(c) + [[1, 500000, 1000000]] for c in cases])
    assert [g[0] for g in got] == want
    for value, granted in got:
        scaled = value * 1000000 >> 32
        assert granted == [scaled < 1, scaled < 500000, True]


def test_granted_at_the_edges(runtime):
    def body_edges(values):
        from protocol import promotion

        return [[promotion.granted(v, c) for c in (1, 999999, 1000000)] for v in values]

    got = runtime.run(body_edges, [0, 4294, 4295, 2**32 - 4295, 2**32 - 1])
    assert got == [[True, True, True], [True, True, True], [False, True, True], [False, True, True],
                   [False, False, True]]


def test_discounts_fixed_and_by_percentage_never_exceed_the_fare(runtime):
    pct = dict(GOOD, discount_pct=20, max_fen=100)
    del pct["discount_fen"]
    assert runtime.run(body_discounts, pct, [0, 1, 200, 500, 1000]) == [0, 0, 40, 100, 100]
    assert runtime.run(body_discounts, GOOD, [0, 30, 200]) == [0, 30, 50]


def discounted_record(pid, discount, fare, seq=5, t=1796600000, value=None):
    draw = expected_draw(pid, TERMINAL, seq, t, record.KIND_QR_CPM, fare, TOKEN) if value is None else value
    ext = [(56, struct.pack("<H", pid)), (57, struct.pack("<I", discount)), (58, struct.pack("<I", draw))]
    return record.encode(TERMINAL, seq, t, record.KIND_QR_CPM, fare - discount, 156, record.ACCEPTED, 0, 1,
                         TOKEN, ext), draw


def test_the_audit_accepts_the_draws_discount_and_flags_any_other(runtime):
    always = dict(GOOD, chance_ppm=1000000)
    day = 20794  # 2026-12-07 local (time 1796600000 is 2026-12-07 in UTC+8)
    raw, _ = discounted_record(7, 50, 200)
    assert runtime.run(body_audit, DEVICE_KEY, raw, always, "bus", day) is None
    assert runtime.run(body_audit, DEVICE_KEY, raw, None, "bus", day) == "unknown programme 7"
    assert runtime.run(body_audit, DEVICE_KEY, raw, always, "scenic", day) == "programme does not apply to this tap"
    raw_more, _ = discounted_record(7, 80, 200)  # draws over fare 200 (= 120 + 80), but 80 is not the 50 it gives
    assert runtime.run(body_audit, DEVICE_KEY, raw_more, always, "bus", day) == "discount 80 is not the programme's 50"
    forged, value = discounted_record(7, 50, 200, value=12345)
    assert runtime.run(body_audit, DEVICE_KEY, forged, always, "bus", day) == "draw does not match the record"
    assert runtime.run(body_audit, bytes(32), raw, always, "bus", day) == "draw does not match the record"
    _, value = discounted_record(7, 50, 200)
    rare = dict(GOOD, chance_ppm=max(1, (value * 1000000 >> 32)))  # the draw's scaled value: not below it
    assert runtime.run(body_audit, DEVICE_KEY, raw, rare, "bus", day) == "draw did not grant a discount"
    plain = record.encode(TERMINAL, 6, 1796600000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1, TOKEN)
    assert runtime.run(body_audit, DEVICE_KEY, plain, always, "bus", day) is None
