"""A school's roster of student passes (fleet bundle kind 7) and the school bus's profile section.

The roster says which student passes ride on which days.  Its body (inside a signed fleet bundle,
protocol/fleet.py), big-endian:

    group length g u8 | group (g bytes, UTF-8) | issuer u16 | n u16 |
    n x (pass id 8, weekdays u8, first day u16, last day u16)

`group` is the terminal group it is addressed to (1..32 characters, like a profile's: the school's
buses); a terminal of another group refuses it.  `issuer` is the ticket issuer of the school's passes
(protocol/ticket.py), pass id a pass's ticket id; weekdays a bit mask (bit 0 Monday .. bit 6 Sunday, at
least one), first/last day the local day numbers
(protocol/profile.py local_day) of the term, inclusive.  Entries are in ascending pass id order, each id
once: a duplicate or an unordered roster is refused with its reason, so the terminal can search the body
in place (RAM: the body itself, at most 37 + 320 x 13 bytes).

The profile's "school" section:
    {"product": 0..65535,     the ticket product id of student passes (required)
     "rescan_s": 0..3600}     default 60: a second scan of a pass this soon is "already scanned", not
                              an alighting
"""

import struct

HEAD = 4  # issuer, count (after the group)
ENTRY = 13
MAX_PASSES = 320
MAX_GROUP = 32
MAX_BODY = 1 + MAX_GROUP + HEAD + MAX_PASSES * ENTRY
RESCAN_S = 60
FIELDS = ("product", "rescan_s")

ON_ROSTER = 0
NOT_LISTED = 1  # the pass is not on the roster
NOT_TODAY = 2  # on the roster, but not for today's date or weekday


class RosterError(ValueError):
    pass


def weekday(day):
    """0 Monday .. 6 Sunday of a day number (day 0, 1970-01-01, was a Thursday)."""
    return (day + 3) % 7


class Roster:
    """A checked roster body, searched in place by pass id."""

    def __init__(self, body):
        body = bytes(body)
        g = body[0] if body else 0
        if not 0 < g <= MAX_GROUP or len(body) < 1 + g + HEAD:
            raise RosterError("roster of %d bytes has no group of 1..%d bytes and head" % (len(body), MAX_GROUP))
        try:
            self.group = body[1:1 + g].decode()
        except UnicodeError:
            raise RosterError("roster group is not UTF-8")
        self.start = 1 + g + HEAD  # where the passes begin
        self.issuer, self.count = struct.unpack_from(">HH", body, 1 + g)
        if self.count > MAX_PASSES:
            raise RosterError("roster of %d passes, at most %d" % (self.count, MAX_PASSES))
        if len(body) != self.start + self.count * ENTRY:
            raise RosterError("roster of %d bytes does not hold %d passes" % (len(body), self.count))
        self.body = body
        prev = None
        for i in range(self.count):
            off = self.start + i * ENTRY
            pid = body[off:off + 8]
            days, first, last = struct.unpack_from(">BHH", body, off + 8)
            if prev is not None and pid <= prev:
                if pid == prev:
                    raise RosterError("pass %s is on the roster twice" % _hex(pid))
                raise RosterError("passes are not in ascending order at %s" % _hex(pid))
            if not days or days > 0x7F:
                raise RosterError("pass %s has weekdays 0x%02x (bit 0 Monday .. bit 6 Sunday)" % (_hex(pid), days))
            if last < first:
                raise RosterError("pass %s ends on day %d before it starts on day %d" % (_hex(pid), last, first))
            prev = pid

    def find(self, pass_id):
        """(weekdays, first day, last day) of a pass id, or None."""
        lo, hi = 0, self.count
        body = self.body
        while lo < hi:
            mid = (lo + hi) // 2
            off = self.start + mid * ENTRY
            pid = body[off:off + 8]
            if pid == pass_id:
                return struct.unpack_from(">BHH", body, off + 8)
            if pid < pass_id:
                lo = mid + 1
            else:
                hi = mid
        return None

    def rides(self, issuer, pass_id, day):
        """ON_ROSTER, NOT_LISTED or NOT_TODAY for a pass of `issuer` on local day number `day`."""
        got = None if issuer != self.issuer else self.find(bytes(pass_id))
        if got is None:
            return NOT_LISTED
        days, first, last = got
        if not first <= day <= last or not days >> weekday(day) & 1:
            return NOT_TODAY
        return ON_ROSTER


def _hex(b):
    return "".join("%02x" % x for x in b)


def body(group, issuer, passes):
    """The body of a roster for terminal group `group`: `passes` [(pass id 8 bytes, weekdays mask, first
    day, last day)], put in order; a duplicate raises RosterError (the host refuses what the terminal would)."""
    name = group.encode()
    out = bytearray([len(name)]) + name + struct.pack(">HH", issuer, len(passes))
    for pid, days, first, last in sorted(passes):
        if len(pid) != 8:
            raise RosterError("a pass id is 8 bytes")
        out += bytes(pid) + struct.pack(">BHH", days, first, last)
    Roster(out)
    return bytes(out)


def check(section, whole):
    """The profile's "school" section checked (protocol/profile.py SECTIONS); raises ProfileError."""
    from protocol import profile

    profile.known_fields(section, "school", FIELDS)
    try:
        section["product"] = profile.integer(section, "product", 0, 65535)
        section["rescan_s"] = profile.integer(section, "rescan_s", 0, 3600, RESCAN_S)
    except profile.ProfileError as e:
        raise profile.ProfileError("school: %s" % e)
