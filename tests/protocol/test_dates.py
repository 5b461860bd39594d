"""protocol/dates.py on both runtimes: the civil date of the board clock agrees with CPython's calendar
(whatever epoch the port's time module uses), EMV expiry digits parse or are refused, and "expired" means
strictly before the day (5F24) or the month (track-2 YYMM)."""

import datetime

from hypothesis import strategies as st
from runtimes import draw_examples


def body_civil(seconds):
    from protocol import dates

    return [dates.civil(s) for s in seconds]


def body_expiry(cases):
    from protocol import dates

    out = []
    for digits, now in cases:
        date = dates.expiry(digits)
        out.append((date, None if date is None else dates.expired(date, now)))
    return out


def utc(y, m, d, h=0):
    return int(datetime.datetime(y, m, d, h, tzinfo=datetime.timezone.utc).timestamp())


def test_civil_agrees_with_the_calendar(runtime):
    seconds = draw_examples(st.integers(0, 2**32 - 1), count=300) + [0, 951782400, 4107542399, utc(2024, 2, 29, 23)]
    got = runtime.run(body_civil, seconds)
    for s, date in zip(seconds, got):
        d = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
        assert tuple(date) == (d.year, d.month, d.day), s


def test_expiry_digits_and_expired(runtime):
    now = utc(2026, 12, 15, 12)
    cases = [("2612", now), ("2611", now), ("261215", now), ("261214", now), ("3012", now), ("991231", now),
             ("4912", now), ("2613", now), ("2600", now), ("261232", now), ("26121", now), ("26AB", now),
             ("", now), ("2602", utc(2026, 3, 1))]
    got = runtime.run(body_expiry, cases)
    assert [tuple(d) if d else None for d, _ in got] == [
        (2026, 12, 31), (2026, 11, 31), (2026, 12, 15), (2026, 12, 14), (2030, 12, 31), (1999, 12, 31),
        (2049, 12, 31), None, None, None, None, None, None, (2026, 2, 31)]
    assert [e for _, e in got] == [False, True, False, True, False, True, False] + [None] * 6 + [True]
