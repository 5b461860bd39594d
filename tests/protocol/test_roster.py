"""protocol/roster.py on both runtimes: a pass rides on its weekdays between its dates, found by binary
search in the body; a duplicate pass is refused before signing."""

import pytest

from protocol import roster


def test_roster_lookup_by_date_and_weekday(runtime):
    day = 20833  # a Friday
    body = roster.body("s", 5, [(b"WEEKDAYS", 0x1F, day - 1, day + 1), (b"SATURDAY", 0x20, day, day + 7)])
    got = runtime.run(body_rides, body, [(5, b"WEEKDAYS", day), (5, b"WEEKDAYS", day + 1), (5, b"WEEKDAYS", day + 2),
                                         (5, b"SATURDAY", day), (5, b"SATURDAY", day + 1), (6, b"WEEKDAYS", day),
                                         (5, b"NOBODY00", day)])
    assert got == [roster.ON_ROSTER, roster.NOT_TODAY, roster.NOT_TODAY, roster.NOT_TODAY, roster.ON_ROSTER,
                   roster.NOT_LISTED, roster.NOT_LISTED]


def body_rides(body, cases):
    from protocol import roster

    r = roster.Roster(body)
    return [r.rides(issuer, pid, day) for issuer, pid, day in cases]


def test_bundle_make_refuses_a_duplicate_pass():
    with pytest.raises(roster.RosterError, match="on the roster twice"):
        roster.body("s", 5, [(b"PUPIL001", 1, 0, 1), (b"PUPIL001", 2, 0, 1)])
