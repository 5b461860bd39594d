"""Offline risk per credential (firmware/risk.py over firmware/tapstate.py) at the decision level, on both
runtimes: the operator's findings of issue 14 — an old payment code accepted again after 32 other taps,
after a reboot or with a lower ATC; 50 new ATCs of one card in a day; the same card re-tapped a second
later — and the first-ride caps, the profile's limits and a board without a valid clock.

A body plays a terminal: Decider + TapState in a directory, each accepted tap "journalled" (a sequence
number) and then counted into the state (risk.commit), as app.py does; "reboot" builds both again from the
same directory.  MicroPython runs them with a board's 192 KB heap."""

import asyncio

from firmware import emv
from host_sim.emulators import emv_card
from protocol import cpm, luhn, profile, record
from tests.firmware.helpers import roomy

SALT = bytes(range(16))
KEY = bytes(range(32, 64))
DAY = 1796083200  # 2026-12-01 00:00 UTC: 08:00 in the default time zone (UTC+8)
PAN = "6228480000000000018"

ACCEPT, DECLINE, ALREADY_PAID = 1, 2, 3


def pan(i):
    """A Luhn-valid account number of its own for each i."""
    head = "621700%012d" % i
    return next(head + str(d) for d in range(10) if luhn.valid(head + str(d)))


def code(atc, account=PAN):
    return cpm.encode(account, atc=atc, cryptogram=bytes(range(1, 9)))


def card(atc):
    c = emv_card.Card(sorted(emv_card.PROFILES)[0], atc=atc)

    async def exchange(apdu):
        return c.respond(apdu)

    return asyncio.run(emv.read(exchange, emv.terminal_data(200, b"\x01\x02\x03\x04", DAY)))


def body_terminal(root, salt, key, steps):
    """Steps: ("line", scanner line, now) | ("card", emv read dict, now) | ("reboot",) | ("profile", dict or
    None).  One answer per tap: (outcome, reason, seq: the record's own if accepted, the original's if
    already paid)."""
    import gc

    from firmware import decision, risk
    from firmware.tapstate import TapState
    from protocol import crypto

    def boot(profile):
        d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(key, bytes(12), p, a))
        d.state = TapState(root)
        d.active.profile = profile  # a terminal boots with its profile
        return d

    d = boot(None)
    seq = d.state.applied
    out = []
    for step in steps:
        if step[0] == "reboot":
            profile, d = d.active.profile, None
            gc.collect()  # the old terminal's buffers go first, as they do in a real reboot
            d = boot(profile)
            continue
        if step[0] == "profile":
            d.active.profile = step[1]
            continue
        r = d.decide(step[1], step[2]) if step[0] == "line" else d.decide_emv(step[1], step[2])
        if r.outcome == decision.ACCEPT:
            seq += 1
            d.remember(r.token, r.atc, seq, r.kind)
            risk.commit(d, r, seq, step[2])
            out.append((r.outcome, r.reason, seq))
        else:
            out.append((r.outcome, r.reason, r.seq))
    return out


# A bus route's profile without a "risk" section: the documented defaults (protocol/risk.py DEFAULTS) hold.
ROUTE = profile.parse(b'{"profile": "bus", "group": "route-7"}')


def run(runtime, tmp_path, steps, limits=ROUTE):
    """The steps on a terminal running profile `limits` (None: no profile)."""
    return roomy(runtime).run(body_terminal, str(tmp_path), SALT, KEY, [("profile", limits)] + steps)


def test_an_old_code_after_32_other_taps_a_reboot_or_with_a_lower_atc_is_refused(runtime, tmp_path):
    steps = [("line", code(5), DAY)]
    steps += [("line", code(1, pan(i)), DAY + 1 + i) for i in range(40)]  # more than decision.RECENT
    steps += [("line", code(5), DAY + 100), ("reboot",), ("line", code(5), DAY + 101),
              ("line", code(4), DAY + 102), ("line", code(3), DAY + 3600), ("line", code(6), DAY + 3600)]
    got = run(runtime, tmp_path, steps)
    assert got[0] == (ACCEPT, 0, 1)
    assert all(g[0] == ACCEPT for g in got[1:41])
    assert got[41:] == [(ALREADY_PAID, 0, 1), (ALREADY_PAID, 0, 1), (DECLINE, record.REASON_REPLAY, 0),
                        (DECLINE, record.REASON_REPLAY, 0), (ACCEPT, 0, 42)]
    assert record.REASON_TEXT[record.REASON_REPLAY] == "replayed code"


def test_the_same_card_re_tapped_within_the_window_is_already_paid(runtime, tmp_path):
    steps = [("line", code(7), DAY), ("line", code(8), DAY + 1), ("line", code(9), DAY + 59), ("reboot",),
             ("line", code(10), DAY + 30), ("line", code(11), DAY + 60), ("line", code(12), DAY + 61)]
    got = run(runtime, tmp_path, steps)
    assert got == [(ACCEPT, 0, 1), (ALREADY_PAID, 0, 1), (ALREADY_PAID, 0, 1), (ALREADY_PAID, 0, 1),
                   (ACCEPT, 0, 2), (ALREADY_PAID, 0, 2)]


def test_contactless_cards_keep_their_atc_and_window_too(runtime, tmp_path):
    steps = [("card", card(20), DAY), ("card", card(21), DAY + 1), ("reboot",), ("card", card(20), DAY + 500),
             ("card", card(19), DAY + 501), ("card", card(22), DAY + 502)]
    got = run(runtime, tmp_path, steps)
    assert got == [(ACCEPT, 0, 1), (ALREADY_PAID, 0, 1), (ALREADY_PAID, 0, 1), (DECLINE, record.REASON_REPLAY, 0),
                   (ACCEPT, 0, 2)]


def test_50_new_atcs_of_a_known_card_in_a_day_stop_at_the_daily_cap(runtime, tmp_path):
    steps = [("line", code(1), DAY - 86400)]  # seen yesterday: a known card today
    steps += [("line", code(10 + i), DAY + 61 * i) for i in range(50)]
    steps += [("line", code(100), DAY + 86400)]  # the next day counts afresh
    got = run(runtime, tmp_path, steps)
    today = got[1:51]
    assert [g[0] for g in today] == [ACCEPT] * 20 + [DECLINE] * 30
    assert {g[1] for g in today[20:]} == {record.REASON_DAILY_RIDES}
    assert got[51][0] == ACCEPT


def test_a_card_never_seen_before_is_held_to_the_first_ride_caps(runtime, tmp_path):
    steps = [("line", code(10 + i), DAY + 61 * i) for i in range(8)]
    steps += [("line", code(100), DAY + 86400)]  # seen yesterday now: the known caps
    got = run(runtime, tmp_path, steps)
    assert [g[0] for g in got[:8]] == [ACCEPT] * 5 + [DECLINE] * 3
    assert {g[1] for g in got[5:8]} == {record.REASON_NEW_RIDES}
    assert got[8][0] == ACCEPT
    assert record.REASON_TEXT[record.REASON_NEW_RIDES] == "new card ride limit"


def test_the_profile_sets_the_limits_and_amount_caps_have_their_reasons(runtime, tmp_path):
    limits = profile.parse(b'{"profile": "bus", "group": "route-7", "risk": {"dup_window_s": 0, "max_fen": 1000, '
                           b'"new_max_fen": 500, "new_max_rides": 0, "max_rides": 0}}')
    fresh = [("line", code(10 + i), DAY + i) for i in range(4)]  # one second apart: no window now
    known = [("line", code(1, pan(1)), DAY - 86400)] + [("line", code(10 + i, pan(1)), DAY + i) for i in range(7)]
    got = run(runtime, tmp_path, fresh + known, limits)
    assert got[:4] == [(ACCEPT, 0, 1), (ACCEPT, 0, 2), (DECLINE, record.REASON_NEW_AMOUNT, 0),
                       (DECLINE, record.REASON_NEW_AMOUNT, 0)]
    assert [g[0] for g in got[4:]] == [ACCEPT] * 6 + [DECLINE] * 2  # yesterday's, then 5 x 2.00 = 10.00 today
    assert {g[1] for g in got[-2:]} == {record.REASON_DAILY_AMOUNT}


def test_without_a_profile_only_the_counter_holds(runtime, tmp_path):
    steps = [("line", code(10 + i), DAY + i) for i in range(30)] + [("reboot",), ("line", code(39), DAY + 40),
                                                                    ("line", code(20), DAY + 41)]
    got = run(runtime, tmp_path, steps, None)
    assert [g[0] for g in got[:30]] == [ACCEPT] * 30  # no window, no caps: nothing configured them
    assert got[30:] == [(ALREADY_PAID, 0, 30), (DECLINE, record.REASON_REPLAY, 0)]


def test_without_a_valid_clock_only_the_counter_holds(runtime, tmp_path):
    steps = [("line", code(10 + i), 1000 + i) for i in range(8)] + [("line", code(12), 2000),
                                                                    ("line", code(9), 2001)]
    got = run(runtime, tmp_path, steps)
    assert [g[0] for g in got[:8]] == [ACCEPT] * 8  # no days, no window: caps need the time
    assert got[8:] == [(ALREADY_PAID, 0, 3), (DECLINE, record.REASON_REPLAY, 0)]


def test_no_state_decides_as_before(runtime):
    def body(salt, key, lines):
        from firmware import decision
        from protocol import crypto

        d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(key, bytes(12), p, a))
        return [(r.outcome, r.risk) for r in (d.decide(line, 1796083200 + i) for i, line in enumerate(lines))]

    assert runtime.run(body, SALT, KEY, [code(i) for i in range(30)]) == [(ACCEPT, None)] * 30


def body_replay_records(records, profile):
    """risk.replay over record dicts, one entry carried through: (atc_high, rides, fen, paid, day) after each."""
    from firmware import risk

    e = None
    out = []
    for rec in records:
        got = risk.replay(e, rec, profile)
        if got is not None:
            e = got
        out.append(None if got is None else [e.atc_high, e.rides, e.fen, e.paid, e.day, e.first_day])
    return out


def test_replay_counts_a_journalled_record_as_the_tap_did(runtime):
    import struct

    ride = struct.pack(">HB8sIIH", 1, 1, b"u" * 8, 4000000000, DAY, 3)

    def rec(kind, decision, amount, when, ext):
        return record.decode(record.encode(b"TERM0001", 1, when, kind, amount, 156, decision, 0, 1, b"t" * 16, ext))

    records = [rec(record.KIND_QR_CPM, record.ACCEPTED, 200, DAY, [(record.EXT_ATC, b"\x00\x07")]),
               rec(record.KIND_QR_CPM, record.DECLINED, 0, DAY + 1, [(record.EXT_ATC, b"\x00\x09")]),
               rec(record.KIND_EMV_CONTACTLESS, record.ACCEPTED, 0, DAY + 2, [(record.EXT_ATC, b"\x00\x08")]),
               rec(record.KIND_RIDE_CODE, record.ACCEPTED, 150, DAY + 86400, [(record.EXT_RIDE, ride)]),
               rec(record.KIND_SEAL_KEY, record.ACCEPTED, 0, DAY + 86400, [])]
    got = runtime.run(body_replay_records, records, None)
    day = (DAY + 28800) // 86400
    assert got == [[7, 1, 200, 1, day, day], None, [8, 2, 200, 1, day, day], [4000000000, 1, 150, 1, day + 1, day],
                   None]


def body_ride_risk(root, roots_text, lines, now, profile):
    """Ride codes on a terminal with state and `profile`, rebooted (a new Decider, nothing in RAM) before
    each line."""
    import gc
    import os

    from firmware import decision, risk
    from firmware.tapstate import TapState

    try:
        os.mkdir(root + "/keys")
    except OSError:
        pass
    with open(root + "/keys/ride-roots", "w") as f:
        f.write(roots_text)
    out = []
    seq = 0
    d = None
    for line in lines:
        d = None
        gc.collect()
        d = decision.Decider(None, state=TapState(root))
        d.flash_root = root
        d.active.profile = profile
        r = d.decide(line, now)
        if r.outcome == decision.ACCEPT:
            seq += 1
            risk.commit(d, r, seq, now)
        out.append((r.outcome, r.reason, r.seq if r.outcome == decision.ALREADY_PAID else seq))
    return out


def test_a_ride_code_keeps_its_counter_across_reboots_under_a_profile(runtime, tmp_path):
    from host_sim.tools import ridecodes
    from protocol import ridecode

    now = 1_800_000_000
    issue = ridecodes.issue
    codes = [issue(ridecode.ALG_SM2, now, user_id=b"RIDER001", counter=5, generated=now - 3),
             issue(ridecode.ALG_SM2, now, user_id=b"RIDER001", counter=5, generated=now - 3),  # shown again
             issue(ridecode.ALG_SM2, now, user_id=b"RIDER001", counter=4, generated=now - 2),  # an older one
             issue(ridecode.ALG_SM2, now, user_id=b"RIDER001", counter=6, generated=now - 1)]
    got = roomy(runtime).run(body_ride_risk, str(tmp_path), ridecodes.root_lines(), codes, now,
                             dict(ROUTE, risk={"dup_window_s": 0}))
    assert got == [(ACCEPT, 0, 1), (ALREADY_PAID, 0, 1), (DECLINE, record.REASON_REPLAY, 1), (ACCEPT, 0, 2)]



def body_days(cases):
    from firmware import risk
    from protocol import profile

    return [[risk._day(p, t), profile.local_day(p, t)] for p, t in cases]


def test_the_risk_day_is_the_profiles_local_day(runtime):
    cases = [(None, DAY), (None, DAY + 57599), (None, DAY + 57600), ({"utc_offset_s": 0}, DAY + 86399),
             ({"utc_offset_s": -36000}, DAY + 3600), ({"profile": "bus"}, DAY)]
    assert all(a == b for a, b in runtime.run(body_days, cases))
    assert runtime.run(body_days, [(None, 1000)]) == [[None, 0]]  # no valid clock: no day
