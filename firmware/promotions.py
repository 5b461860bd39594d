"""The county's promotions on the terminal: which programmes a tap may draw, and what this terminal gave
away today per programme (its daily budget), kept durably.

The budget file /flash/state/promo is small and rewritten whole (fsutil.write_atomic) after the journal
append of a discounted tap, never before: the journal is the truth.  A power cut between the two loses
at most that one discount from the file; at boot the journal's recent records put it back (replay: any
record above the file's `applied` sequence).  Layout, little-endian: day u32, applied seq u32, count u8,
count x (programme id u16, fen spent u32).  A new local day starts from nothing.
"""

import struct

from firmware import fsutil
from protocol import profile as profiles
from protocol import promotion

FILE = "state/promo"


class Promotions:
    def __init__(self, root, device_key):
        self.path = None if root is None else root + "/" + FILE
        self.key = promotion.key_of(device_key)
        self.day = -1
        self.applied = 0  # the highest journal sequence whose discount is counted here
        self.spent = {}  # programme id -> fen given away on self.day
        self._compiled = (None, ())  # (the section object, its compiled programmes)
        self._load()

    def _load(self):
        if self.path is None:
            return
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            day, applied, n = struct.unpack_from("<IIB", data, 0)
            spent = {}
            for i in range(n):
                pid, fen = struct.unpack_from("<HI", data, 9 + 6 * i)
                spent[pid] = fen
        except (OSError, ValueError):  # none yet, or damaged: the journal's replay restores what it can
            return
        self.day, self.applied, self.spent = day, applied, spent

    def _save(self):
        if self.path is None:
            return
        out = bytearray(struct.pack("<IIB", self.day, self.applied, len(self.spent)))
        for pid in self.spent:
            out += struct.pack("<HI", pid, self.spent[pid])
        fsutil.makedirs(self.path[:self.path.rfind("/")])
        fsutil.write_atomic(self.path, out)

    def _programmes(self, profile):
        section = None if profile is None else profile.get("promotions")
        if section is None:
            return ()
        if self._compiled[0] is not section:  # checked when the profile was activated: compiles cleanly
            self._compiled = (section, promotion.programmes(section))
        return self._compiled[1]

    def spent_on(self, pid, day):
        return self.spent.get(pid, 0) if day == self.day else 0

    def offers(self, profile, kind, fare, now):
        """The compiled programmes a `kind` tap charged `fare` at board time `now` may draw: in their
        dates, for its kind and this terminal's product, with this terminal's budget for the discount."""
        if fare <= 0 or now is None:
            return None
        progs = self._programmes(profile)
        if not progs:
            return None
        day = profiles.local_day(profile, now)
        out = None
        for p in progs:
            if promotion.applies(p, profile["profile"], kind, day):
                discount = promotion.discount_of(p, fare)
                if discount > 0 and self.spent_on(p[promotion.ID], day) + discount <= p[promotion.TERMINAL_DAILY]:
                    if out is None:
                        out = []
                    out.append(p)
        return out

    def draw(self, offers, terminal, seq, now, kind, fare, token):
        """(programme id, discount, draw) of the first offer whose draw grants, or None."""
        for p in offers:
            value = promotion.draw(self.key, p[promotion.ID], terminal, seq, now, kind, fare, token)
            if promotion.granted(value, p[promotion.CHANCE]):
                return p[promotion.ID], promotion.discount_of(p, fare), value
        return None

    @staticmethod
    def local_day(profile, now):
        """The local day of board time `now` under the profile's time zone (daily budgets)."""
        return profiles.local_day(profile, now)

    def spend(self, pid, discount, day, seq):
        """Count a journalled discount (record `seq`) against this terminal's budget, durably."""
        if day < self.day or seq <= self.applied:
            return
        if day > self.day:
            self.day = day
            self.spent = {}
        self.spent[pid] = self.spent.get(pid, 0) + discount
        self.applied = seq
        self._save()

    def replay(self, rec, profile):
        """At boot: a journalled record (record.decode) whose discount the file may have missed."""
        try:
            got = promotion.of_record(rec)
        except ValueError:
            return
        if got is not None:
            self.spend(got[0], got[1], profiles.local_day(profile, rec["time"]), rec["seq"])
