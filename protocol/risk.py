"""Offline risk limits per credential: the "risk" section of a terminal profile (protocol/profile.py) and
the defaults a terminal without a profile (or without that section) uses.

    "risk": {"dup_window_s": 60,       a second tap of the same credential within this many seconds of
                                       its last accepted one is "already paid", not a new charge
             "max_rides": 20,          accepted taps per credential per local day
             "max_fen": 10000,         amount charged per credential per local day (fen)
             "new_max_rides": 5,       the same two caps on the day a credential is first seen here
             "new_max_fen": 2000}      (first-ride risk: stricter, never looser than the caps above)

0 switches a limit off.  The ATC high-water mark (a lower counter than one already accepted is a replay)
has no switch: it always holds.  Day = protocol/profile.py local_day in the profile's time zone.

The defaults are what an operator of a village bus would expect without configuring anything: a rider
who taps twice while boarding pays once, no card pays for more than 20 rides or 100 yuan a day, and a
card never seen before is held to 5 rides and 20 yuan on its first day, until the host has authorised it.
"""

DEFAULTS = {"dup_window_s": 60, "max_rides": 20, "max_fen": 10000, "new_max_rides": 5, "new_max_fen": 2000}
RANGES = {"dup_window_s": 3600, "max_rides": 1000, "max_fen": 10000000, "new_max_rides": 1000,
          "new_max_fen": 10000000}


def check(section, body):
    """The profile's "risk" section, checked, with every limit filled in (defaults for those absent);
    raises protocol.profile.ProfileError naming the first thing wrong."""
    from protocol import profile

    if not isinstance(section, dict):
        raise profile.ProfileError("risk must be an object")
    for name in section:
        if name not in DEFAULTS:
            raise profile.ProfileError("risk: unknown limit %r" % name)
    for name in DEFAULTS:
        section[name] = profile.integer(section, name, 0, RANGES[name], DEFAULTS[name])
    for new, known in (("new_max_rides", "max_rides"), ("new_max_fen", "max_fen")):
        if section[known] and (not section[new] or section[new] > section[known]):
            raise profile.ProfileError("risk: %s %d is looser than %s %d" % (new, section[new], known, section[known]))
    return section


def limit(profile, name):
    """Limit `name` of the active profile (a checked dict, or None: no profile): its risk section's, or
    the default."""
    section = profile.get("risk") if profile is not None else None
    if section is None:
        return DEFAULTS[name]
    return section.get(name, DEFAULTS[name])
