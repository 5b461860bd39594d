"""Durable per-credential state: what the terminal remembers of each card, code, pass or ticket across
taps and reboots (ATC high-water mark, today's rides and amount, ticket entries, on-board flag).

The journal is the truth; this is a bounded index of it.  app.py writes an entry only after the tap's
record is durable in the journal, and at boot replay() applies the journal's records after the highest
sequence number the state holds, so a power cut between the journal append and the state write loses
nothing.  Every entry keeps the sequence number of the record it last took: replaying is idempotent.

On flash (littlefs, under <root>/state): BUCKETS files, a credential's bucket chosen by the first byte of
its token (a keyed hash, so spread evenly).  A bucket holds at most PER_BUCKET entries; when it is full
the entry with the oldest last_s goes, so at most BUCKETS x PER_BUCKET credentials are kept
(3 072).  A bucket is read whole into one preallocated buffer and rewritten whole through a temporary
file and a rename, which littlefs makes atomic: a power cut leaves the old bucket or the new one.
RAM is that one buffer, whatever the number of credentials kept.

    bucket file: "ZS" | count u16 | seq_high u32 | count x entry
    entry:       token key (KEY bytes) | seq u32 | atc_high + 1 u32 | last_s u32 | day u16 |
                 first_day u16 | rides u16 | paid u16 | fen u32 | entries u16 | flags u16 | last_entry_s u32
    integers little-endian; seq_high: the highest record sequence number the bucket took.
"""

import os
import struct

from protocol import record

BUCKETS = 32
PER_BUCKET = 96
KEY = 8  # bytes of the token kept: two of 3 072 kept tokens share them with probability ~2**-42
HEAD = 8
ENTRY = 40
_FMT = "<IIIHHHHIHHI"  # after the key
MAX_FILE = HEAD + PER_BUCKET * ENTRY  # 3 848 bytes: one 4 KB flash block
REPLAY_MAX = 64  # records a boot replays at most: a power cut costs the state one, a first boot starts from these


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
        self._buf = bytearray(MAX_FILE)
        self._b = -1  # the bucket now in _buf (-1: none)
        self._n = 0  # its entry count
        self._high = 0  # its seq_high
        self.damaged = 0  # buckets found damaged (read as empty) since boot
        self._bad = 0  # bit b: bucket b was found damaged
        self.errors = 0  # writes that failed (the journal still has the taps: the next boot replays them)
        self.applied = 0
        for b in range(BUCKETS):
            self._load(b)
            if self._high > self.applied:
                self.applied = self._high

    def _path(self, b):
        return "%s/%02d" % (self.dir, b)

    def _load(self, b):
        """Bucket `b` into the buffer (cached: only this object writes the buckets)."""
        if b == self._b:
            return
        self._b, self._n, self._high = b, 0, 0
        buf = self._buf
        try:
            with open(self._path(b), "rb") as f:
                got = f.readinto(buf)
        except OSError:
            return  # no bucket yet
        if got >= HEAD and buf[0] == 0x5A and buf[1] == 0x53:
            n, high = struct.unpack_from("<HI", buf, 2)
            if n <= PER_BUCKET and got == HEAD + n * ENTRY:
                self._n, self._high = n, high
                return
        if not self._bad & (1 << b):  # counted and reported once: the next write replaces it
            self._bad |= 1 << b
            self.damaged += 1
            print("tap state: bucket %d damaged, read as empty" % b)

    def _find(self, key):
        """The offset of `key`'s entry in the loaded bucket, -1 when it holds none."""
        buf = self._buf
        end = HEAD + self._n * ENTRY
        p = buf.find(key, HEAD, end)
        while p >= 0:
            if (p - HEAD) % ENTRY == 0:
                return p
            p = buf.find(key, p + 1, end)
        return -1

    def get(self, token):
        """The Entry of `token` (the record's 16-byte token), None if this terminal keeps none."""
        self._load(token[0] * BUCKETS >> 8)
        p = self._find(bytes(token[:KEY]))
        if p < 0:
            return None
        e = Entry()
        (e.seq, atc, e.last_s, e.day, e.first_day, e.rides, e.paid, e.fen, e.entries, e.flags,
         e.last_entry_s) = struct.unpack_from(_FMT, self._buf, p + KEY)
        e.atc_high = atc - 1
        return e

    def put(self, token, e, seq):
        """Keep `e` as `token`'s entry, taken from journal record `seq` (call only once it is journalled).
        False when flash refused the write (counted; the next boot replays the journal)."""
        key = bytes(token[:KEY])
        self._load(token[0] * BUCKETS >> 8)
        buf = self._buf
        p = self._find(key)
        if p < 0:
            if self._n < PER_BUCKET:
                p = HEAD + self._n * ENTRY
                self._n += 1
            else:  # full: the entry whose last tap is oldest goes
                p = HEAD
                oldest = 0xFFFFFFFF
                for q in range(HEAD, HEAD + self._n * ENTRY, ENTRY):
                    t = struct.unpack_from("<I", buf, q + KEY + 8)[0]
                    if t < oldest:
                        oldest, p = t, q
            buf[p:p + KEY] = key
        atc = e.atc_high + 1
        struct.pack_into(_FMT, buf, p + KEY, seq, atc if 0 <= atc <= 0xFFFFFFFF else 0, e.last_s & 0xFFFFFFFF,
                         e.day & 0xFFFF, e.first_day & 0xFFFF, min(e.rides, 0xFFFF), min(e.paid, 0xFFFF),
                         min(e.fen, 0xFFFFFFFF), min(e.entries, 0xFFFF), e.flags & 0xFFFF,
                         e.last_entry_s & 0xFFFFFFFF)
        if seq > self._high:
            self._high = seq
        struct.pack_into("<2sHI", buf, 0, b"ZS", self._n, self._high)
        if seq > self.applied:
            self.applied = seq
        path = self._path(self._b)
        try:
            with open(path + ".new", "wb") as f:
                f.write(memoryview(buf)[:HEAD + self._n * ENTRY])
            os.rename(path + ".new", path)
        except OSError as ex:
            self.errors += 1
            self._b = -1  # the buffer no longer matches flash: read it again next time
            print("tap state: write failed (%s)" % ex)
            return False
        return True

    def replay(self, journal, account):
        """Apply the journal's records after `applied` (a power cut came between an append and its
        state write).  account(entry or None, record dict) -> the Entry after that record, or None when
        the record changes nothing.  At most the last REPLAY_MAX records, so a boot stays short whatever
        the journal holds.  Returns how many records were applied."""
        last = journal.next_seq - 1
        if last < self.applied:  # a journal newer than the state (re-formatted): nothing to take
            print("tap state: journal ends at #%d, state at #%d" % (last, self.applied))
            return 0
        applied = max(self.applied, last - REPLAY_MAX)
        done = 0
        acked = journal.acked
        for data in journal.recent(REPLAY_MAX):  # acknowledged ones first, oldest first: read_after skips them
            if record.seq_of(data) <= acked:
                done += self._replay_one(data, applied, account)
        out = bytearray(4 * record.MAX_SIZE)
        seq = max(applied, acked)
        while True:
            views = journal.read_after(seq, out, 4 * record.MAX_SIZE + 64)
            if not views:
                break
            for v in views:
                data = bytes(v)
                seq = record.seq_of(data)
                done += self._replay_one(data, applied, account)
        if done:
            print("tap state: %d journal records replayed" % done)
        return done

    def _replay_one(self, data, applied, account):
        try:
            rec = record.decode(data)
        except record.RecordError:
            return 0
        seq = rec["seq"]
        token = rec["token"]
        if seq <= applied or not token or len(token) < KEY:
            return 0
        e = self.get(token)
        if e is not None and e.seq >= seq:
            return 0
        after = account(e, rec)
        if after is None:
            return 0
        self.put(token, after, seq)
        return 1
