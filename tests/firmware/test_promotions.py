"""firmware/promotions.py and the Decider's promotion steps on both runtimes, with the flash root in a
temporary directory: a programme with chance 1 discounts every eligible fare and records its draw, this
terminal's daily budget stops it (and a new day starts it again), the budget survives a restart from its
file, and a discount the file missed (a power cut after the journal append) comes back from the record."""

import hashlib
import hmac
import struct

from protocol import record

DEVICE_KEY = bytes(range(32))
TERMINAL = bytes.fromhex("5642000001000000")
T0 = 1796600000  # 2026-12-07 07:33 in UTC+8
PROFILE = {"profile": "bus", "group": "route-7", "utc_offset_s": 28800, "promotions": [
    {"id": 3, "kinds": ["qr_cpm"], "chance_ppm": 1000000, "discount_fen": 50, "terminal_daily_fen": 120,
     "programme_daily_fen": 100000, "from": "2026-12-01", "until": "2026-12-31"}]}


def body_taps(root, key, profile, taps):
    """Taps (kind, fare, time) through Decider.promotion_offers / promote / Promotions.spend as app.py does;
    per tap (amount charged, discount, extensions); then what a fresh Promotions reads from the file."""
    from firmware import decision, promotions
    from protocol import profile as profiles
    from protocol import record

    dec = decision.Decider(None)
    dec.active.profile = profile
    dec.load_promotions(root, key)
    out = []
    seq = 10
    for kind, fare, now in taps:
        d = decision.Decision(decision.ACCEPT, kind=kind, token=bytes(16), amount=fare)
        offers = dec.promotion_offers(d, now)
        won = dec.promote(d, offers, bytes.fromhex("5642000001000000"), seq, now) if offers else None
        if won is not None:
            dec.promotions.spend(won[0], won[1], profiles.local_day(profile, now), seq)
        out.append([d.amount, d.discount, [[t, v] for t, v in d.extensions]])
        seq += 1
    again = promotions.Promotions(root, key)
    return out, [again.day, again.applied, again.spent], record.KIND_QR_CPM


def body_replay(root, key, profile, raws):
    """A fresh Promotions after boot replays journal records (Decider.remember_record): its budget."""
    from firmware import decision

    dec = decision.Decider(None)
    dec.active.profile = profile
    dec.load_promotions(root, key)
    for raw in raws:
        dec.remember_record(raw)
    return [dec.promotions.day, dec.promotions.applied, dec.promotions.spent]


def draw_of(seq, t, kind, fare):
    key = hmac.new(DEVICE_KEY, b"zf1 promo\x01", hashlib.sha256).digest()
    msg = struct.pack("<H8sIIBI16s", 3, TERMINAL, seq, t, kind, fare, bytes(16))
    return int.from_bytes(hmac.new(key, msg, hashlib.sha256).digest()[:4], "big")


def test_chance_one_discounts_until_the_terminal_budget_is_spent(runtime, tmp_path):
    cpm, ride = record.KIND_QR_CPM, record.KIND_RIDE_CODE
    taps = [(cpm, 200, T0), (ride, 200, T0 + 1), (cpm, 200, T0 + 2), (cpm, 200, T0 + 3), (cpm, 20, T0 + 4),
            (cpm, 200, T0 + 86400)]
    got, reloaded, _ = runtime.run(body_taps, str(tmp_path), DEVICE_KEY, PROFILE, taps)
    amounts = [[a, d] for a, d, _ in got]
    # 50 + 50 = 100 of a 120 budget: the third 50 does not fit, a 20-fen fare's discount (20, the whole fare)
    # does; ride codes are not in this programme; the next day starts a new budget
    assert amounts == [[150, 50], [200, 0], [150, 50], [200, 0], [0, 20], [150, 50]]
    first_ext = got[0][2]
    assert first_ext == [[56, struct.pack("<H", 3)], [57, struct.pack("<I", 50)],
                         [58, struct.pack("<I", draw_of(10, T0, cpm, 200))]]
    assert reloaded == [20795, 15, {3: 50}]  # the file: the new day, the last discounted record, its spend


def test_budget_survives_a_restart_and_outside_dates_nothing_is_offered(runtime, tmp_path):
    cpm = record.KIND_QR_CPM
    runtime.run(body_taps, str(tmp_path), DEVICE_KEY, PROFILE, [(cpm, 200, T0), (cpm, 200, T0 + 1)])
    got, reloaded, _ = runtime.run(body_taps, str(tmp_path), DEVICE_KEY, PROFILE, [(cpm, 200, T0 + 2)])
    assert [g[:2] for g in got] == [[200, 0]]  # 100 spent before the restart: 50 more is over 120
    assert reloaded == [20794, 11, {3: 100}]
    late = T0 + 30 * 86400  # 2027-01-06: after "until"
    got, _, _ = runtime.run(body_taps, str(tmp_path / "b"), DEVICE_KEY, PROFILE, [(cpm, 200, late)])
    assert [g[:2] for g in got] == [[200, 0]]
    bus_only = [dict(PROFILE["promotions"][0], profiles=["bus"])]
    got, _, _ = runtime.run(body_taps, str(tmp_path / "c"), DEVICE_KEY,
                            dict(PROFILE, profile="scenic", promotions=bus_only), [(cpm, 200, T0)])
    assert [g[:2] for g in got] == [[200, 0]]  # a programme for bus terminals only (default: every product)
    got, _, _ = runtime.run(body_taps, str(tmp_path / "d"), DEVICE_KEY, None, [(cpm, 200, T0)])
    assert [g[:2] for g in got] == [[200, 0]]  # no profile: today's behaviour


def discounted(seq, t, discount):
    ext = [(56, struct.pack("<H", 3)), (57, struct.pack("<I", discount)),
           (58, struct.pack("<I", draw_of(seq, t, record.KIND_QR_CPM, 200)))]
    return record.encode(TERMINAL, seq, t, record.KIND_QR_CPM, 200 - discount, 156, record.ACCEPTED, 0, 1,
                         bytes(16), ext)


def test_a_discount_the_file_missed_comes_back_from_the_journal(runtime, tmp_path):
    cpm = record.KIND_QR_CPM
    runtime.run(body_taps, str(tmp_path), DEVICE_KEY, PROFILE, [(cpm, 200, T0)])  # file: seq 10, 50 spent
    plain = record.encode(TERMINAL, 12, T0 + 5, cpm, 200, 156, record.ACCEPTED, 0, 1, bytes(16))
    raws = [discounted(10, T0, 50), plain, discounted(13, T0 + 6, 50)]  # 10 is in the file already; 13 is not
    assert runtime.run(body_replay, str(tmp_path), DEVICE_KEY, PROFILE, raws) == [20794, 13, {3: 100}]
    assert runtime.run(body_replay, str(tmp_path), DEVICE_KEY, PROFILE, raws) == [20794, 13, {3: 100}]  # once
