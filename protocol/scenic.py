"""The scenic gate's admission rule: entries, party size and anti-passback, from a ticket and its state.

Pure logic over plain integers, so the terminal (firmware/gate.py) and the host decide alike.  A ticket
allows `entries` entries (0: unlimited within its window) of a party of `party` people: each person is
one admission (one scan, one record, one relay pulse), so it admits entries x party times in all.  The
admissions of one entry (a party going through) follow each other freely; a new entry of the same
ticket within `passback_s` seconds of the last admission is refused as passback (the ticket handed back
over the turnstile to someone else).

The profile's "scenic" section (protocol/profile.py) sets the window:
    {"passback_s": 0..86400}     default 600; 0: no anti-passback
Any other field is refused, so a typo never passes as "no limit".
"""

PASSBACK_S = 600
FIELDS = ("passback_s",)

OK = 0
USED_UP = 1  # every admission the ticket allows is used
PASSBACK = 2  # a new entry too soon after the last admission


def check(section, body):
    """The profile's "scenic" section checked (protocol/profile.py SECTIONS); raises ProfileError."""
    from protocol import profile

    profile.known_fields(section, "scenic", FIELDS)
    try:
        section["passback_s"] = profile.integer(section, "passback_s", 0, 86400, PASSBACK_S)
    except profile.ProfileError as e:
        raise profile.ProfileError("scenic: %s" % e)


def admit(used, last_s, entries, party, now, passback_s):
    """(verdict, admissions after this one) for a ticket that has had `used` admissions, the last at
    `last_s`, allowing `entries` entries (0 unlimited) of `party` people, scanned at `now`."""
    if party < 1:
        party = 1
    if entries and used >= entries * party:
        return USED_UP, used
    if used and used % party == 0 and passback_s and now - last_s < passback_s:
        return PASSBACK, used
    return OK, used + 1


def member(used, party):
    """(entry number, person within the party) of the admission that makes `used` admissions (1-based)."""
    if party < 1:
        party = 1
    return (used - 1) // party + 1, (used - 1) % party + 1
