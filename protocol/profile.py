"""Terminal profiles: which product a terminal runs (bus, school bus, scenic gate) and its limits.

A profile arrives as a signed fleet bundle (protocol/fleet.py KIND_PROFILE) addressed to one terminal
group (a route, a school, a scenic area); its body is a UTF-8 JSON object, small and readable, checked
whole before it is activated so a bad one is refused with a reason and the previous profile stays:

    {"profile": "bus" | "school" | "scenic",   the product this terminal runs
     "group": "route-7",                        the terminal group it is addressed to (1..32 chars)
     "utc_offset_s": 28800,                     where "today" starts for daily counters (default UTC+8)
     "<section>": {...}, ...}                   product and risk parameters, each checked by its owner

Every section a body may carry is in SECTIONS (name -> checker(section, whole body) raising
ProfileError); a name outside it is refused, so a typo never passes as "no limit".
"""

import json

from protocol import busfare, risk

PROFILES = ("bus", "school", "scenic")
MAX_BODY = 4096  # bytes of JSON: parsed in RAM on the terminal
MAX_GROUP = 32
DEFAULT_UTC_OFFSET = 28800  # China Standard Time
ENVELOPE = ("profile", "group", "utc_offset_s")


class ProfileError(ValueError):
    pass


def integer(section, name, low, high, default=None, where=""):
    """section[name] as an int in [low, high]; `default` when absent (None: required).  `where` prefixes
    the reason ("bus: ")."""
    value = section.get(name, default)
    if value is None:
        raise ProfileError("%s%s is missing" % (where, name))
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProfileError("%s%s %r is outside %d..%d" % (where, name, value, low, high))
    return value


def known_fields(section, name, fields):
    """Refuse a section `name` that is not an object or holds a field outside `fields`."""
    if not isinstance(section, dict):
        raise ProfileError("%s must be an object" % name)
    for key in section:
        if key not in fields:
            raise ProfileError("%s: unknown field %r" % (name, key))


SECTIONS = {}  # section name -> checker(section dict, whole body dict); raises ProfileError
SECTIONS["bus"] = busfare.check  # protocol/busfare.py: the village bus's fares


def _loaded(name):
    """The checker `check` of protocol/<name>.py, loaded with the first profile that has its section (heap)."""

    def check(section, body):
        __import__("protocol." + name, None, None, ("check",)).check(section, body)

    return check


SECTIONS["school"] = _loaded("roster")  # protocol/roster.py: the school bus
SECTIONS["scenic"] = _loaded("scenic")  # protocol/scenic.py: the scenic gate
SECTIONS["risk"] = risk.check  # protocol/risk.py: offline risk limits


def _promotions(section, body):
    """The "promotions" checker (protocol/promotion.py), loaded only for a profile that has the section."""
    from protocol import promotion

    promotion.check(section, body)


SECTIONS["promotions"] = _promotions


def parse(body):
    """The checked profile (a dict) of a bundle body; ProfileError names the first thing wrong."""
    if len(body) > MAX_BODY:
        raise ProfileError("profile of %d bytes is over %d" % (len(body), MAX_BODY))
    try:
        obj = json.loads(bytes(body).decode())
    except (ValueError, UnicodeError):
        raise ProfileError("profile is not a UTF-8 JSON object")
    if not isinstance(obj, dict):
        raise ProfileError("profile is not a JSON object")
    name = obj.get("profile")
    if name not in PROFILES:
        raise ProfileError("unknown profile %r (known: %s)" % (name, ", ".join(PROFILES)))
    group = obj.get("group")
    if not isinstance(group, str) or not 0 < len(group) <= MAX_GROUP:
        raise ProfileError("group must be a name of 1..%d characters" % MAX_GROUP)
    obj["utc_offset_s"] = integer(obj, "utc_offset_s", -43200, 50400, DEFAULT_UTC_OFFSET)
    for key in obj:
        if key in ENVELOPE:
            continue
        check = SECTIONS.get(key)
        if check is None:
            raise ProfileError("unknown section %r" % key)
        if not isinstance(obj[key], (dict, list)):
            raise ProfileError("section %r is not an object or a list" % key)
        check(obj[key], obj)
    return obj


def local_day(profile, seconds):
    """The day number (days since 1970-01-01 in the profile's time zone) of board time `seconds`:
    daily counters reset when it changes."""
    offset = DEFAULT_UTC_OFFSET if profile is None else profile.get("utc_offset_s", DEFAULT_UTC_OFFSET)
    return (seconds + offset) // 86400
