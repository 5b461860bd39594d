"""Offline risk per credential, against its durable state (firmware/tapstate.py): the ATC high-water mark,
the duplicate-tap window and the daily caps (limits: protocol/risk.py, from the active profile).

check() is asked by firmware/decision.py (and firmware/ridecodes.py) once a credential passed its own
checks and the deny list: a refusal, or the entry the credential will have once this tap is journalled
(app.py puts it then).  account() makes that entry, from the decision at a tap and from the journal's
record when boot replays taps the state missed, so both paths count alike.

- counter lower than the highest accepted one: a replay, declined (REASON_REPLAY);
- counter equal to it: the same code shown again, ALREADY_PAID (its original record's sequence number);
- a numeric payment code (one-time, its token is the code's) seen accepted before: ALREADY_PAID;
- another tap within dup_window_s of the last accepted one: ALREADY_PAID, not a new charge;
- over the daily count or amount cap (the stricter new_* caps on the day the credential was first
  seen here): declined, each cap with its own reason.

Without a valid board clock only the counter checks run: days and windows need the time.
"""

from firmware import decision
from firmware.tapstate import Entry
from protocol import profile as profiles
from protocol import record
from protocol.risk import limit


def counter(kind, atc):
    """The credential's transaction counter as an int (-1: it has none): the ATC of a CPM code or a
    card (bytes, big-endian), a ride code's counter ((counter, generated))."""
    if atc is None:
        return -1
    if kind == record.KIND_RIDE_CODE:
        return atc[0]
    return int.from_bytes(atc, "big")


def check(decider, kind, token, atc, amount, now):
    """(a Decision refusing the tap or None, the Entry after this tap or None without state)."""
    state = decider.state
    if state is None:
        return None, None
    e = state.get(token)
    n = counter(kind, atc)
    if e is not None:
        if kind == record.KIND_PAYMENT_CODE or (n >= 0 and n == e.atc_high):
            return decision.Decision(decision.ALREADY_PAID, kind=kind, token=token, amount=amount, seq=e.seq), None
        if 0 <= n < e.atc_high:
            return decision.Decision(decision.DECLINE, record.REASON_REPLAY, kind, token=token), None
    if now is None or now < decision.CLOCK_VALID_FROM:
        return None, account(e, n, amount, now, None)
    profile = getattr(decider.active, "profile", None)
    day = profiles.local_day(profile, now)
    if kind == record.KIND_PAYMENT_CODE:  # one code, one token: the host authorises each one
        return None, account(e, n, amount, now, day)
    if e is not None:
        window = limit(profile, "dup_window_s")
        if e.last_s and 0 <= now - e.last_s < window:
            return decision.Decision(decision.ALREADY_PAID, kind=kind, token=token, amount=amount, seq=e.seq), None
    new = e is None or e.first_day == day
    rides, fen = (e.rides, e.fen) if e is not None and e.day == day else (0, 0)
    cap = limit(profile, "new_max_rides" if new else "max_rides")
    if cap and rides >= cap:
        return decision.Decision(decision.DECLINE, record.REASON_NEW_RIDES if new else record.REASON_DAILY_RIDES,
                                 kind, token=token), None
    cap = limit(profile, "new_max_fen" if new else "max_fen")
    if cap and fen + amount > cap:
        return decision.Decision(decision.DECLINE, record.REASON_NEW_AMOUNT if new else record.REASON_DAILY_AMOUNT,
                                 kind, token=token), None
    return None, account(e, n, amount, now, day)


def account(e, n, amount, now, day):
    """The entry after an accepted tap with counter `n` (-1: none) charging `amount` at board time `now`
    on local day `day` (None: no valid clock, days not counted)."""
    if e is None:
        e = Entry()
    if n > e.atc_high:
        e.atc_high = n
    if day is not None:
        if not e.first_day:
            e.first_day = day
        if e.day != day:
            e.day, e.rides, e.paid, e.fen = day, 0, 0, 0
        e.rides += 1
        e.fen += amount
        if amount:
            e.paid += 1
        e.last_s = now
    return e


def replay(e, rec, profile):
    """The entry after journalled record `rec` (a record.decode dict), None when it changes nothing here."""
    if rec["decision"] != record.ACCEPTED:
        return None
    kind = rec["kind"]
    ext = rec["ext"]
    if kind == record.KIND_RIDE_CODE:
        ride = ext.get(record.EXT_RIDE)
        n = int.from_bytes(ride[11:15], "big") if ride is not None and len(ride) == 21 else -1
    elif kind == record.KIND_QR_CPM or kind == record.KIND_EMV_CONTACTLESS:
        n = counter(kind, ext.get(record.EXT_ATC))
    elif kind == record.KIND_PAYMENT_CODE:
        n = -1
    else:
        return None
    now = rec["time"]
    day = profiles.local_day(profile, now) if now >= decision.CLOCK_VALID_FROM else None
    return account(e, n, rec["amount"], now, day)
