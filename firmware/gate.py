"""The scenic gate and the school bus: what a verified ticket or student pass does on a profiled terminal.

firmware/decision.py verifies the ticket (signature, window) and hands it here with the fleet token of
(issuer, ticket id).  Each credential's entry lives in the durable per-credential state
(firmware/tapstate.py, `decider.state`): `entries` counts admissions, `last_entry_s` is the time of the
last one, flags bit 0 says a pupil is on board.  The decision computes the entry as it will be after the
tap (Decision.state) without writing it; app.py puts it after the journal append, so a power cut before
the record is durable changes nothing, and boot replays the journal into the state (account()).

Without a durable state (decider.state None) a scenic ticket counts its admissions in the Decider's RAM
as before (no passback then), and the school bus keeps who is on board in RAM_SIZE entries of RAM, lost
at a reboot.
"""

import struct

from firmware.tapstate import Entry
from protocol import record, scenic

FIELDS = ("atc_high", "last_s", "day", "rides", "paid", "fen", "first_day", "entries", "last_entry_s", "flags")
ON_BOARD = 1  # tapstate flags bit 0
FARE_ID_SCHOOL = 3
RAM_SIZE = 64


class RamState:
    """The tapstate API in RAM, bounded (oldest forgotten first): a terminal without a durable state."""

    def __init__(self):
        self.entries = {}
        self.order = []
        self.applied = 0

    def get(self, token):
        return self.entries.get(token)

    def put(self, token, e, seq):
        if token not in self.entries:
            self.order.append(token)
            if len(self.order) > RAM_SIZE:
                del self.entries[self.order.pop(0)]
        self.entries[token] = e
        self.applied = seq


def _state(decider):
    state = decider.state
    if state is None:
        state = getattr(decider, "gate_ram", None)
        if state is None:
            state = decider.gate_ram = RamState()
    return state


def _next(decider, token):
    """A new entry holding what the credential's current one holds (the current one is never changed
    before the journal append)."""
    old = _state(decider).get(token)
    return Entry() if old is None else _copy(old)


def account(e, rec):
    """The entry after accepted journal record `rec` of a ticket or a student pass, from what the record
    says (admissions used, direction), so replaying it twice gives the same entry (firmware/tapstate.py
    replay at boot)."""
    new = Entry() if e is None else _copy(e)
    ext = rec["ext"]
    if rec["kind"] == record.KIND_SCHOOL_PASS:
        school = ext.get(record.EXT_SCHOOL)
        if not school:
            return None
        if school[0] == record.SCHOOL_BOARD:
            new.flags |= ON_BOARD
        else:
            new.flags &= ~ON_BOARD
        new.entries += 1
    else:
        admission = ext.get(record.EXT_ADMISSION)
        new.entries = struct.unpack(">H", admission[:2])[0] if admission and len(admission) >= 2 else new.entries + 1
    new.last_entry_s = rec["time"]
    return new


def _copy(e):
    new = Entry()
    for name in FIELDS:
        setattr(new, name, getattr(e, name))
    return new


def commit(decider, token, entry, seq):
    """After the journal append of record `seq`: the credential's entry as the decision computed it."""
    _state(decider).put(token, entry, seq)


def ticket(decider, fields, token, now):
    """A verified ticket inside its window: admitted (one admission) or refused as used up or passback."""
    from firmware.decision import ACCEPT, DECLINE, FARE_ID_TICKET, Decision

    kind = record.KIND_TICKET
    prof = decider.active.profile
    section = prof.get("scenic") if prof is not None else None
    passback = section["passback_s"] if section else 0
    party = fields["party"]
    if decider.state is None:  # today's RAM count (firmware/decision.py), no passback without durable times
        new, used, last, passback = None, decider._entries.get(token, 0), 0, 0
    else:
        new = _next(decider, token)
        used, last = new.entries, new.last_entry_s
    verdict, after = scenic.admit(used, last, fields["entries"], party, now, passback)
    if verdict == scenic.USED_UP:
        return Decision(DECLINE, record.REASON_TICKET_USED_UP, kind, token=token)
    if verdict == scenic.PASSBACK:
        return Decision(DECLINE, record.REASON_PASSBACK, kind, token=token)
    if decider._denied(token):  # used up at another gate of the group: the host listed it
        return Decision(DECLINE, record.REASON_USED_ELSEWHERE, kind, token=token)
    entry, person = scenic.member(after, party)
    ext = [(record.EXT_TICKET, struct.pack(">HB8sHB", fields["issuer"], fields["key_id"], fields["ticket_id"],
                                           fields["product"], min(entry, 255)))]
    if party > 1 or new is not None:
        ext.append((record.EXT_ADMISSION, struct.pack(">HHBBH", min(after, 0xFFFF), min(entry, 0xFFFF), party,
                                                      person, min(fields["entries"] * party, 0xFFFF))))
    if new is not None:
        new.entries = after
        new.last_entry_s = now
    return Decision(ACCEPT, kind=kind, token=token, extensions=ext, amount=decider.amount_for(kind),
                    fare_id=FARE_ID_TICKET, entry=entry, state=new)


def student(decider, fields, token, now):
    """A verified student pass on the school bus: boarding or alighting (alternate per pass), or refused
    with its reason (another product, no roster, not on it, not today, scanned again at once)."""
    from firmware.decision import ACCEPT, DECLINE, Decision
    from protocol import profile as profiles
    from protocol import roster

    prof = decider.active.profile
    section = prof.get("school")
    kind = record.KIND_SCHOOL_PASS
    rost = decider.active.roster
    if section is None or rost is None:  # not set up: no student product or no roster to check a pass against
        return Decision(DECLINE, record.REASON_NO_ROSTER, kind, token=token)
    if fields["product"] != section["product"]:
        return Decision(DECLINE, record.REASON_NOT_STUDENT_PASS, record.KIND_TICKET, token=token)
    got = rost.rides(fields["issuer"], fields["ticket_id"], profiles.local_day(prof, now))
    if got == roster.NOT_LISTED:
        return Decision(DECLINE, record.REASON_NOT_ON_ROSTER, kind, token=token)
    if got == roster.NOT_TODAY:
        return Decision(DECLINE, record.REASON_NOT_TODAY, kind, token=token)
    new = _next(decider, token)
    if new.last_entry_s and 0 <= now - new.last_entry_s < section["rescan_s"]:
        return Decision(DECLINE, record.REASON_RESCANNED, kind, token=token)
    boarding = not new.flags & ON_BOARD
    direction = record.SCHOOL_BOARD if boarding else record.SCHOOL_ALIGHT
    ext = [(record.EXT_SCHOOL, struct.pack(">BH8sH", direction, fields["issuer"], fields["ticket_id"],
                                           fields["product"]))]
    if boarding:
        ext.append((record.EXT_GUARDIAN, bytes(fields["holder"])))
    new.flags ^= ON_BOARD
    new.entries += 1
    new.last_entry_s = now
    return Decision(ACCEPT, kind=kind, token=token, extensions=ext, amount=0, fare_id=FARE_ID_SCHOOL,
                    entry=direction, state=new)
