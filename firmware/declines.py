"""Declined taps as journal records: the operator sees every refusal, and garbage never costs a paid tap.

A declined tap is journalled like an accepted one (decision DECLINED, amount 0, its kind, reason and
the credential token when the decision knows it, never card data) and uploaded with the others.  The
passenger is told first: a decline needs no durability, so its feedback never waits for flash.  Two
limits keep a flood of bad input (a scanner spewing noise, a blocked card shown again and again) from
filling the journal:

- Coalescing: a decline with the same reason and token as one journalled less than WINDOW_MS ago is
  not journalled but counted; the next journalled decline of that reason and token carries the count
  (record.EXT_REPEATS), so the host still counts every declined tap while a flood writes at most one
  record per reason and token every WINDOW_MS.  A count still waiting in RAM at a power cut, or in a
  slot pushed out by MAX_KEYS newer ones, is lost from the records (counted in `unrecorded`).
- Reserve: declines are journalled only while more than 1/ACCEPTED_SHARE of the journal is free, so
  declined records never make the journal refuse an accepted tap.  Past that, and when the journal is
  full (a decline because the journal is FULL cannot be journalled either), the decline is counted in
  `unrecorded` and shown on the console, never written.

RAM: MAX_KEYS slots, whatever the flood.
"""

import struct
import time

from firmware.journal import HEADER_SIZE, SECTOR, JournalFull
from protocol import record

WINDOW_MS = 30000
MAX_KEYS = 4
ACCEPTED_SHARE = 4  # this fraction of the journal (1/4) is kept for accepted taps

RECORDED = 1
COALESCED = 2
UNRECORDED = 3
OUTCOME_TEXT = {RECORDED: "recorded", COALESCED: "counted with a recent identical decline",
                UNRECORDED: "not recorded: the journal keeps its room for paid taps"}


def _elapsed_ms(now, then):
    """now - then on the board's wrapping millisecond ticks (plain integers on CPython, in tests)."""
    diff = getattr(time, "ticks_diff", None)
    return now - then if diff is None else diff(now, then)


class Declines:
    def __init__(self, journal, terminal, currency):
        self.journal = journal
        self.terminal = terminal
        self.currency = currency
        self.reserve = journal.ring * (SECTOR - HEADER_SIZE) // ACCEPTED_SHARE  # bytes kept for accepted taps
        self._slots = []  # [reason, token, ms of its last record, declines coalesced since it], oldest first
        self.recorded = 0
        self.coalesced = 0  # not journalled on their own: counted in a later record's EXT_REPEATS
        self.unrecorded = 0  # in no record at all (journal full or reserve reached, slot pushed out)
        self.seq = 0  # the sequence number of the last declined record

    def _slot(self, reason, token, now_ms):
        for slot in self._slots:
            if slot[0] == reason and slot[1] == token:
                return slot
        if len(self._slots) >= MAX_KEYS:
            self.unrecorded += self._slots.pop(0)[3]
        slot = [reason, token, None, 0]
        self._slots.append(slot)
        return slot

    def add(self, kind, reason, token, time_s, now_ms):
        """One declined tap: RECORDED (journalled, `seq` tells where), COALESCED or UNRECORDED."""
        if token is None:
            token = record.NO_TOKEN
        slot = self._slot(reason, token, now_ms)
        if slot[2] is not None and _elapsed_ms(now_ms, slot[2]) < WINDOW_MS:
            slot[3] += 1
            self.coalesced += 1
            return COALESCED
        j = self.journal
        if j.full or reason == record.REASON_JOURNAL_FULL or j.free < self.reserve:
            self.unrecorded += 1
            return UNRECORDED
        ext = ()
        if slot[3]:
            ext = ((record.EXT_REPEATS, struct.pack("<H", min(slot[3], 0xFFFF))),)

        def build(seq):
            return record.encode(self.terminal, seq, time_s, kind, 0, self.currency, record.DECLINED, reason, 0,
                                 token, ext)

        try:
            self.seq = j.append(build)
        except JournalFull:
            self.unrecorded += 1
            return UNRECORDED
        slot[2] = now_ms
        slot[3] = 0
        self._slots.remove(slot)  # newest last: a slot pushed out is the one unused longest
        self._slots.append(slot)
        self.recorded += 1
        return RECORDED
