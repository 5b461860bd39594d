"""Durable per-credential state: what the terminal remembers of each card, code, pass or ticket across
taps and reboots (ATC high-water mark, today's rides and amount, ticket entries, on-board flag).

The journal is the truth; this is a bounded index of it.  app.py writes an entry only after the tap's
record is durable in the journal, and at boot replay() applies the journal's records after the highest
sequence number the state holds, so a power cut between the journal append and the state write loses
nothing.  Every entry keeps the sequence number of the record it last took: replaying is idempotent.

On flash (littlefs, under <root>/state): BUCKETS files, a credential's bucket chosen by the first byte of
its token (a keyed hash, so spread evenly).  A bucket holds at most PER_BUCKET entries; when it is full
the entry with the oldest last_s goes, so at most BUCKETS x PER_BUCKET credentials are kept
(3 072).  A bucket is read through one small preallocated buffer (CHUNK entries) and rewritten whole:
copied into a temporary file with the entry in place, which a rename puts over the old one (atomic on
littlefs: a power cut leaves the old bucket or the new one).  RAM is that buffer, whatever the number of
credentials kept.

    bucket file: "ZS" | count u16 | seq_high u32 | count x entry
    entry:       token key (KEY bytes) | seq u32 | atc_high + 1 u32 | last_s u32 | day u16 |
                 first_day u16 | rides u16 | paid u16 | fen u32 | entries u16 | flags u16 | last_entry_s u32
    integers little-endian; seq_high: the highest record sequence number the bucket took.
"""

import os
import struct

BUCKETS = 32
PER_BUCKET = 96
KEY = 8  # bytes of the token kept: two of 3 072 kept tokens share them with probability ~2**-42
HEAD = 8
ENTRY = 40
_FMT = "<IIIHHHHIHHI"  # after the key
MAX_FILE = HEAD + PER_BUCKET * ENTRY  # 3 848 bytes: one 4 KB flash block
CHUNK = 8  # entries read at a time: the RAM a bucket costs


class Entry:
    """What the terminal knows of one credential; every field an int (see protocol/SPEC.md "Offline risk")."""

    def __init__(self):
        self.atc_high = -1  # highest transaction counter accepted (-1: none)
        self.last_s = 0  # board time of the last accepted tap
        self.day = 0  # local day number (protocol/profile.py local_day) the daily counters below belong to
        self.rides = 0  # accepted taps on `day`
        self.paid = 0  # taps charged on `day` (the bus's daily fare cap)
        self.fen = 0  # amount charged on `day`
        self.first_day = 0  # day first accepted here
        self.entries = 0  # ticket entries used
        self.last_entry_s = 0  # time of the last admission (anti-passback)
        self.flags = 0  # bit 0: on board (school bus)
        self.seq = 0  # journal sequence number of the record this entry last took


class TapState:
    def __init__(self, root):
        self.dir = root + "/state"
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        self._buf = bytearray(CHUNK * ENTRY)  # a bucket is read and copied through this, CHUNK entries at a time
        self._one = bytearray(ENTRY)  # the entry being put
        self.damaged = 0  # buckets found damaged (read as empty) since boot
        self._bad = 0  # bit b: bucket b was found damaged
        self.errors = 0  # writes that failed (the journal still has the taps: the next boot replays them)
        self.applied = 0
        for b in range(BUCKETS):
            f, _, high = self._open(b)
            if f is not None:
                f.close()
            if high > self.applied:
                self.applied = high

    def _path(self, b):
        return "%s/%02d" % (self.dir, b)

    def _open(self, b):
        """(file positioned at the first entry, entry count, seq_high) of bucket `b`; (None, 0, 0) when
        there is none or it is damaged (then counted, and reported once: the next write replaces it)."""
        try:
            f = open(self._path(b), "rb")
        except OSError:
            return None, 0, 0  # no bucket yet
        head = f.read(HEAD)
        size = f.seek(0, 2)
        if len(head) == HEAD and head[:2] == b"ZS":
            n, high = struct.unpack_from("<HI", head, 2)
            if n <= PER_BUCKET and size == HEAD + n * ENTRY:
                f.seek(HEAD)
                return f, n, high
        f.close()
        if not self._bad & (1 << b):
            self._bad |= 1 << b
            self.damaged += 1
            print("tap state: bucket %d damaged, read as empty" % b)
        return None, 0, 0

    def _chunks(self, f, n):
        """Read the `n` entries of `f` CHUNK at a time into the buffer: yields (first index, count)."""
        mv = memoryview(self._buf)
        for i in range(0, n, CHUNK):
            k = min(CHUNK, n - i)
            f.readinto(mv[:k * ENTRY])
            yield i, k

    def _at(self, key, k):
        """The offset of `key`'s entry among the first `k` entries in the buffer, -1 if not there."""
        buf = self._buf
        p = buf.find(key, 0, k * ENTRY)
        while p >= 0:
            if p % ENTRY == 0:
                return p
            p = buf.find(key, p + 1, k * ENTRY)
        return -1

    def get(self, token):
        """The Entry of `token` (the record's 16-byte token), None if this terminal keeps none."""
        key = bytes(token[:KEY])
        f, n, _ = self._open(token[0] * BUCKETS >> 8)
        if f is None:
            return None
        try:
            for _, k in self._chunks(f, n):
                p = self._at(key, k)
                if p >= 0:
                    e = Entry()
                    (e.seq, atc, e.last_s, e.day, e.first_day, e.rides, e.paid, e.fen, e.entries, e.flags,
                     e.last_entry_s) = struct.unpack_from(_FMT, self._buf, p + KEY)
                    e.atc_high = atc - 1
                    return e
        finally:
            f.close()
        return None

    def put(self, token, e, seq):
        """Keep `e` as `token`'s entry, taken from journal record `seq` (call only once it is journalled).
        The bucket is copied into a new file with the entry in place (or added, or in place of the entry
        whose last tap is oldest when the bucket is full), then renamed over the old one.  False when
        flash refused the write (counted; the next boot replays the journal)."""
        key = bytes(token[:KEY])
        b = token[0] * BUCKETS >> 8
        slot, n, high = self._slot(b, key)
        one = self._one
        one[:KEY] = key
        atc = e.atc_high + 1
        struct.pack_into(_FMT, one, KEY, seq, atc if 0 <= atc <= 0xFFFFFFFF else 0, e.last_s & 0xFFFFFFFF,
                         e.day & 0xFFFF, e.first_day & 0xFFFF, min(e.rides, 0xFFFF), min(e.paid, 0xFFFF),
                         min(e.fen, 0xFFFFFFFF), min(e.entries, 0xFFFF), e.flags & 0xFFFF,
                         e.last_entry_s & 0xFFFFFFFF)
        count = n + 1 if slot == n else n
        if seq > high:
            high = seq
        if seq > self.applied:
            self.applied = seq
        path = self._path(b)
        old = None
        try:
            old, n, _ = self._open(b)
            with open(path + ".new", "wb") as out:
                out.write(struct.pack("<2sHI", b"ZS", count, high))
                if old is not None:
                    for i, k in self._chunks(old, n):
                        if i <= slot < i + k:
                            self._buf[(slot - i) * ENTRY:(slot - i + 1) * ENTRY] = one
                        out.write(memoryview(self._buf)[:k * ENTRY])
                    old.close()
                    old = None
                if slot == n:
                    out.write(one)
            os.rename(path + ".new", path)
        except OSError as ex:
            if old is not None:
                old.close()
            self.errors += 1
            print("tap state: write failed (%s)" % ex)
            return False
        return True

    def _slot(self, b, key):
        """(index the entry of `key` takes in bucket `b`, the bucket's entry count, its seq_high): its own
        entry, else the next free one (= the count), else the one whose last tap is oldest."""
        f, n, high = self._open(b)
        if f is None:
            return 0, 0, 0
        try:
            for i, k in self._chunks(f, n):
                p = self._at(key, k)
                if p >= 0:
                    return i + p // ENTRY, n, high
            if n < PER_BUCKET:
                return n, n, high
            f.seek(HEAD)
            slot, oldest = 0, 0xFFFFFFFF
            for i, k in self._chunks(f, n):
                for j in range(k):
                    t = struct.unpack_from("<I", self._buf, j * ENTRY + KEY + 8)[0]
                    if t < oldest:
                        slot, oldest = i + j, t
            return slot, n, high
        finally:
            f.close()

    def replay(self, journal, account):
        """Apply the journal's records after `applied` (a power cut came between an append and its
        state write): firmware/tapstate_replay.py, loaded only when the journal holds records after it
        (taps, or declines and key records, which change no entry: `applied` then moves on in RAM).
        account(entry or None, record dict) -> the Entry after that record, or None when the record
        changes nothing.  Returns how many records were applied."""
        last = journal.next_seq - 1
        if last == self.applied:
            return 0
        if last < self.applied:  # a journal newer than the state (re-formatted): nothing to take
            print("tap state: journal ends at #%d, state at #%d" % (last, self.applied))
            return 0
        import sys

        import firmware
        from firmware import tapstate_replay

        try:
            return tapstate_replay.replay(self, journal, account)
        finally:  # once per boot: its code need not stay in RAM
            self.applied = last
            del sys.modules["firmware.tapstate_replay"]
            delattr(firmware, "tapstate_replay")
