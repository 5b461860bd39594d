"""The transaction journal: a log-structured record area on the raw journal partition.

Why not a littlefs file: littlefs erases a sector on nearly every synced append, and a NOR sector erase
stalls the CPU for 45-400 ms.  Here the tap path only *programs*: each record is one program of exactly
its own bytes, packed contiguously across 256-byte pages (NOR allows programming a page again as long
as only 1-bits are cleared).  Sectors are erased ahead of time by prepare(), which the application
calls while idle.  The byte layout and the durability contract are in protocol/SPEC.md ("Journal and
durability"); in short:

    blocks 0, 1      watermark sectors (ping-pong): a header, then 16-byte slots, one per ACK
    blocks 2 ..      the record ring: a 16-byte sector header (written when the sector is first used:
                     generation, first sequence number), then entries packed back to back:
                     length (1) | record | CRC (2) | MAC (4)

append() returns only after the entry's program returned: from then on the record survives power
loss, so the terminal signals "accepted" only after append() returned.  Boot recovery reads every
sector header (one small read each), walks only the newest sector, and drops only a torn tail (which
append() never returned for); its sequence number is retired, so numbers never repeat.  Damage found
anywhere else (bit flips, bad headers, torn watermark slots) is counted and skipped, never fatal.

RAM: a few fixed buffers and one 4-byte key per ring sector; nothing grows with the record count.
"""

import struct

from protocol import record
from protocol.crc import crc32
from protocol.crypto import equal, hmac_sha256

SECTOR = 4096
HEADER_SIZE = 16
ENTRY_OVERHEAD = 7  # length (1) + CRC (2) + MAC (4)
MAC_SIZE = 4
SLOT = 16
WM_SECTORS = 2
PREPARE_AHEAD = 2  # sectors kept erased ahead of the head
RESERVE = SECTOR - HEADER_SIZE  # `full` once less than a sector of room is left
FORMAT = 1
MAGIC_RING = 0x4A  # "J"
MAGIC_WM = 0x57  # "W"
SEALED = 12  # header byte: 0xFF open, 0x00 the tail after the last good entry is torn (already counted)

_ERASED = 0xFF
_TID = 4  # the terminal id in a record (protocol/record.py HEADER), elided from RECORDS bodies: protocol/link.py
_TID_SIZE = 8
_BLANK_SLOT = b"\xff" * 16
_OPEN = 0
_VALID = 1
_BAD = 2
_BLANK = 3


class JournalFull(OSError):
    pass


def _crc16(data):
    return crc32(data) & 0xFFFF


class Journal:
    def __init__(self, part, key):
        # the large buffers first, while the heap still has a hole for them
        self._sector = bytearray(SECTOR)
        self._entry = bytearray(record.MAX_SIZE + ENTRY_OVERHEAD)
        self.part = part
        self.key = bytes(key)
        self.blocks = part.ioctl(4, 0)
        if part.ioctl(5, 0) != SECTOR or self.blocks < WM_SECTORS + 3:
            raise OSError("journal partition needs 4096-byte blocks and at least 5 of them")
        self.ring = self.blocks - WM_SECTORS
        self.next_seq = 1
        self.acked = 0
        # counters: what recovery and reading found (reported on the console and in STATUS)
        self.torn = 0  # torn tail at boot (never signalled as accepted)
        self.damaged = 0  # records lost to damage (CRC/MAC failures) found while reading, each one counted
        self.bad_headers = 0  # ring sectors whose header is neither valid nor blank
        self.watermark_errors = 0  # torn or damaged watermark slots/headers, or a missing watermark
        self.tap_erases = 0  # erases append() had to do because prepare() had not run (should stay 0)
        self._keys = [0] * self.ring  # first sequence number of each ring sector (0: none/unknown)
        self._head = self.ring - 1
        self._head_gen = 0
        self._head_off = SECTOR
        self._tail = 0
        self._used = 0
        self._prepared = 0
        self._wm = 0  # active watermark sector (0 or 1)
        self._wm_gen = 0
        self._wm_slot = SLOT // SLOT  # next slot index
        self._wm_spare_ready = False
        self._wm_missing = True
        self._scan_mid = -1
        self._scan_tail = -1
        self._scan_lost = 0
        self._hdr = bytearray(HEADER_SIZE)
        # records lost to damage found in each ring sector so far: a sector read again adds only what is new
        self._sector_lost = bytearray(self.ring)
        # read_after()'s cursor: the last record it handed out and where the entry after it starts
        self._cur_seq = -1
        self._cur_i = 0
        self._cur_p = 0

    # -- counters --------------------------------------------------------------------------------

    @property
    def dropped(self):
        """Everything damaged found so far (the console's ready line shows it)."""
        return self.torn + self.damaged + self.bad_headers + self.watermark_errors

    @property
    def free(self):
        """Bytes of entries that still fit without touching an unacknowledged record."""
        spare = self.ring - self._used
        return spare * (SECTOR - HEADER_SIZE) + (SECTOR - self._head_off)

    @property
    def full(self):
        """True near the end of the area: the terminal refuses new paid taps until the host ACKs."""
        return self.free < RESERVE

    def depth(self):
        return max(0, self.next_seq - 1 - self.acked)

    # -- flash helpers ---------------------------------------------------------------------------

    def _block(self, i):
        return WM_SECTORS + i

    def _read_sector(self, block):
        self.part.readblocks(block, self._sector, 0)
        return self._sector

    def _erase(self, block):
        self.part.ioctl(6, block)

    def _mac(self, data):
        return hmac_sha256(self.key, data)[:MAC_SIZE]

    def _check(self, buf, p, last):
        """Length of a good entry at p of a sector buffer (sequence > last), else 0."""
        n = buf[p]
        end = p + 1 + n
        if n < record.HEADER_SIZE or n == _ERASED or end + 6 > SECTOR:
            return 0
        body = memoryview(buf)[p:end]
        if buf[end] | (buf[end + 1] << 8) != _crc16(body):
            return 0
        if not equal(self._mac(body), buf[end + 2:end + 6]):
            return 0
        if record.seq_of(body[1:]) <= last:
            return 0
        return n

    def _entries(self, buf, last=0, first=0, start=HEADER_SIZE):
        """(offset, length, seq) of each good entry in a sector buffer, in order.

        After a damaged entry the scan resynchronises on the next good one (a length, a plausible
        sequence number, then CRC and MAC).  Afterwards the caller learns where damage was: _scan_mid,
        the offset of the first damaged byte with good entries after it (-1: none), and _scan_tail, where
        the sector ends in damage (bytes after the last good entry that are not erased; -1: none).
        _scan_lost counts the records the damage before good entries destroyed: numbers within a sector
        run without gaps, so it is the gap in sequence numbers across each damaged spot (at least one
        per spot when the number before it is unknown; `first` is the sector header's first number).
        """
        self._scan_mid = -1
        self._scan_tail = -1
        self._scan_lost = 0
        p = start
        while p < SECTOR:
            if buf[p] == _ERASED and self._blank_from(buf, p):
                return
            n = self._check(buf, p, last)
            if n:
                last = record.seq_of(memoryview(buf)[p + 1:p + 1 + n])
                yield p, n, last
                p += n + ENTRY_OVERHEAD
                continue
            q = self._resync(buf, p + 1, last)
            if q < 0:
                self._scan_tail = p
                return
            if self._scan_mid < 0:
                self._scan_mid = p
            seq = record.seq_of(memoryview(buf)[q + 1:q + 1 + buf[q]])
            self._scan_lost += seq - max(last, first - 1) - 1 if last or first else 1
            p = q

    def _blank_from(self, buf, p):
        mv = memoryview(buf)
        while p < SECTOR:
            n = min(SLOT, SECTOR - p)
            if mv[p:p + n] != _BLANK_SLOT[:n]:
                return False
            p += n
        return True

    def _resync(self, buf, p, last):
        limit = last + 4096
        while p < SECTOR - record.HEADER_SIZE - ENTRY_OVERHEAD:
            n = buf[p]
            if record.HEADER_SIZE <= n < _ERASED:
                seq = buf[p + 13] | (buf[p + 14] << 8) | (buf[p + 15] << 16) | (buf[p + 16] << 24)
                if last < seq <= limit and self._check(buf, p, last):
                    return p
            p += 1
        return -1

    def _note_damage(self, i, lost):
        """Ring sector i holds `lost` damaged records as far as reads have found: count what is new."""
        lost = min(lost, 255)
        if lost > self._sector_lost[i]:
            self.damaged += lost - self._sector_lost[i]
            self._sector_lost[i] = lost

    def _header(self, block):
        """(state, gen, first_seq, sealed) of a ring sector's header."""
        h = self._hdr
        self.part.readblocks(block, h, 0)
        if h[0] == MAGIC_RING and h[1] == FORMAT and h[10] | (h[11] << 8) == _crc16(memoryview(h)[:10]):
            gen, first = struct.unpack_from("<II", h, 2)
            return _VALID, gen, first, h[SEALED] != _ERASED
        for b in h:
            if b != _ERASED:
                return _BAD, 0, 0, False
        return _BLANK, 0, 0, False

    def _first_good_seq(self, block):
        buf = self._read_sector(block)
        for _, _, seq in self._entries(buf):
            return seq
        return 0

    # -- recovery --------------------------------------------------------------------------------

    def open(self):
        self._open_watermark()
        keys = self._keys
        gens = [0] * self.ring  # only during open(): generation of each sector with a valid header
        best = -1
        for i in range(self.ring):
            state, gen, first, _ = self._header(self._block(i))
            if state == _VALID:
                keys[i] = first
                gens[i] = gen
            elif state == _BAD:
                self.bad_headers += 1
                keys[i] = self._first_good_seq(self._block(i))  # a bad header does not hide records
            if keys[i] and (best < 0 or keys[i] > keys[best]):
                best = i
        if best < 0:
            self._head_gen = 0
        else:
            self._recover_run(best, gens)
        del gens
        if self._wm_missing and self._used:
            self.watermark_errors += 1  # records but no readable watermark: resend what is left
            self.acked = max(self.acked, self._oldest_key() - 1)  # reclaimed sectors were acknowledged
        self.next_seq = max(self.next_seq, self.acked + 1)
        self._advance_tail()
        self._count_prepared()
        if not self._wm_gen:
            self._format_watermark()
        if not self._prepared:
            self._prepare_ring()  # boot is off the tap path: have one sector ready before the first tap
        return self

    def _oldest_key(self):
        return self._keys[self._tail] if self._used else 0

    def _recover_run(self, head, gens):
        keys = self._keys
        self._head = head
        # Walk back from the head while the first sequence numbers decrease; sectors without a
        # readable first record in between belong to the run (their neighbours bracket them).
        used = 1
        tail = head
        prev = keys[head]
        i = head
        for _ in range(self.ring - 1):
            i = (i - 1) % self.ring
            k = keys[i]
            if k:
                if k >= prev:
                    break
                prev = k
                used = (head - i) % self.ring + 1
                tail = i
            else:
                state = self._header(self._block(i))[0]
                if state == _BLANK:
                    break
        self._tail = tail
        self._used = used
        self._head_gen = max(gens)
        self._recover_head()

    def _recover_head(self):
        block = self._block(self._head)
        state, _, first, sealed = self._header(block)
        buf = self._read_sector(block)
        last = 0
        end = HEADER_SIZE
        for p, n, seq in self._entries(buf, 0, first or self._keys[self._head]):
            last = seq
            end = p + n + ENTRY_OVERHEAD
        if self._scan_mid >= 0:
            self._note_damage(self._head, self._scan_lost)
        if last == 0:
            last = (first or self._keys[self._head]) - 1
            if last < 0:
                last = 0
        self._head_off = end
        self.next_seq = last + 1
        if self._scan_tail >= 0 or state != _VALID:
            # A torn tail: the entry being written when power failed (append() never returned).  Its
            # number is retired, and new records go to a fresh sector, never behind the damage.
            if self._scan_tail >= 0:
                if not sealed:
                    self.torn += 1
                    if state == _VALID:
                        self.part.writeblocks(block, b"\x00", SEALED)
                self.next_seq = last + 2
            self._head_off = SECTOR

    def _advance_tail(self):
        """Forget sectors whose records are all acknowledged (they become free for prepare())."""
        keys = self._keys
        while self._used > 1:
            j = (self._tail + 1) % self.ring
            steps = 1
            # sectors without a readable first record: decide by the next one that has one
            while not keys[j] and steps < self._used - 1:
                j = (j + 1) % self.ring
                steps += 1
            if not keys[j] or keys[j] > self.acked + 1:
                return
            self._tail = j
            self._used -= steps

    def _count_prepared(self):
        self._prepared = 0
        i = self._head
        for _ in range(min(PREPARE_AHEAD, self.ring - self._used)):
            i = (i + 1) % self.ring
            buf = self._read_sector(self._block(i))
            if not self._blank_from(buf, 0):
                return
            self._prepared += 1

    # -- the watermark ---------------------------------------------------------------------------

    def _open_watermark(self):
        best = -1
        self._wm_missing = True
        for w in range(WM_SECTORS):
            buf = self._read_sector(w)
            if buf[0] == MAGIC_WM and buf[1] == FORMAT and buf[6] | (buf[7] << 8) == _crc16(memoryview(buf)[:6]):
                gen = struct.unpack_from("<I", buf, 2)[0]
                nxt = SECTOR // SLOT
                for s in range(1, SECTOR // SLOT):
                    o = s * SLOT
                    if self._blank_from_slot(buf, o):
                        nxt = s
                        break
                    if self._slot_ok(buf, o):
                        self.acked = max(self.acked, struct.unpack_from("<I", buf, o)[0])
                        self._wm_missing = False
                    else:
                        self.watermark_errors += 1
                        nxt = s + 1
                if gen > self._wm_gen:
                    self._wm, self._wm_gen, self._wm_slot = w, gen, nxt
                    best = w
            elif not self._blank_from(buf, 0):
                self.watermark_errors += 1  # a watermark sector with a bad header
        if best >= 0:
            self._wm_spare_ready = self._blank_from(self._read_sector(1 - best), 0)

    def _blank_from_slot(self, buf, o):
        return memoryview(buf)[o:o + SLOT] == _BLANK_SLOT

    def _slot_ok(self, buf, o):
        v = memoryview(buf)[o:o + 4]
        return buf[o + 4] | (buf[o + 5] << 8) == _crc16(v) and equal(self._mac(v), buf[o + 6:o + 10])

    def _wm_header(self, w, gen):
        h = bytearray(b"\xff" * SLOT)
        h[0] = MAGIC_WM
        h[1] = FORMAT
        struct.pack_into("<I", h, 2, gen)
        struct.pack_into("<H", h, 6, _crc16(memoryview(h)[:6]))
        self.part.writeblocks(w, h, 0)
        self._wm, self._wm_gen, self._wm_slot = w, gen, 1

    def _format_watermark(self):
        """A fresh (or entirely unreadable) watermark area: start with the acked value we have."""
        if not self._blank_from(self._read_sector(0), 0):
            self._erase(0)
        self._wm_header(0, 1)
        self._write_slot(self.acked)
        self._wm_spare_ready = self._blank_from(self._read_sector(1), 0)

    def _write_slot(self, value):
        if self._wm_slot >= SECTOR // SLOT:
            other = 1 - self._wm
            if not self._wm_spare_ready:
                self._erase(other)  # prepare() had not run: the ACK path erases (never the tap path)
            self._wm_spare_ready = False
            self._wm_header(other, self._wm_gen + 1)
        s = bytearray(b"\xff" * SLOT)
        struct.pack_into("<I", s, 0, value)
        v = memoryview(s)[:4]
        struct.pack_into("<H", s, 4, _crc16(v))
        s[6:10] = self._mac(v)
        self.part.writeblocks(self._wm, s, self._wm_slot * SLOT)
        self._wm_slot += 1

    # -- appending -------------------------------------------------------------------------------

    def append(self, build):
        """Durably append the record `build(seq)` returns; returns its sequence number.

        Raises JournalFull rather than overwrite an unacknowledged record.
        """
        seq = self.next_seq
        rec = build(seq)
        n = len(rec)
        if n < record.HEADER_SIZE or n > record.MAX_SIZE or record.seq_of(rec) != seq:
            raise ValueError("not a record for sequence %d" % seq)
        size = n + ENTRY_OVERHEAD
        if self._head_off + size > SECTOR:
            self._open_sector(seq)
        e = self._entry
        e[0] = n
        e[1:1 + n] = rec
        body = memoryview(e)[:1 + n]
        c = _crc16(body)
        e[1 + n] = c & 0xFF
        e[2 + n] = c >> 8
        e[3 + n:size] = self._mac(body)
        self.part.writeblocks(self._block(self._head), memoryview(e)[:size], self._head_off)
        # the program returned: the record is durable from here on
        self._head_off += size
        self.next_seq = seq + 1
        return seq

    def raise_floor(self, seq_high, build):
        """The host holds records up to seq_high: never issue a number at or below it.  When seq_high
        >= next_seq, the numbers next_seq..seq_high are retired by appending the record `build(first,
        last, seq)` returns (a KIND_SEQ_JUMP record) at seq_high + 1, at the start of a fresh sector, so
        that recovery after a reboot finds it as the newest record.  Returns (first, last, seq) or None
        when there was nothing to do.  Raises JournalFull (next_seq stays raised in RAM)."""
        if seq_high < self.next_seq or seq_high >= 0xFFFFFFFE:
            return None
        first = self.next_seq
        self.next_seq = seq_high + 1
        self._head_off = SECTOR  # a fresh sector: numbers within a sector run without gaps
        seq = self.append(lambda s: build(first, seq_high, s))
        return first, seq_high, seq

    def find(self, seq):
        """The record numbered `seq` if the journal still holds it (acknowledged or not), else None."""
        for _, buf, p, n, s, _ in self._walk():
            if s == seq:
                return bytes(buf[p + 1:p + 1 + n])
            if s > seq:
                return None
        return None

    def _open_sector(self, seq):
        if self._used >= self.ring:
            raise JournalFull("journal full: %d records wait for the host" % self.depth())
        i = (self._head + 1) % self.ring
        block = self._block(i)
        if self._prepared:
            self._prepared -= 1
        else:
            self._erase(block)
            self.tap_erases += 1
        self._sector_lost[i] = 0
        gen = self._head_gen + 1
        h = self._hdr
        h[0] = MAGIC_RING
        h[1] = FORMAT
        struct.pack_into("<II", h, 2, gen, seq)
        struct.pack_into("<H", h, 10, _crc16(memoryview(h)[:10]))
        for k in range(12, HEADER_SIZE):
            h[k] = _ERASED
        self.part.writeblocks(block, h, 0)
        self._head = i
        self._head_gen = gen
        self._head_off = HEADER_SIZE
        self._keys[i] = seq
        if not self._used:
            self._tail = i
        self._used += 1

    def prepare(self):
        """Erase one sector ahead of need; call while idle (it stalls the CPU for up to ~400 ms).

        Returns True if it did some work, False when everything is ready.
        """
        if self._wm_gen and not self._wm_spare_ready:
            self._erase(1 - self._wm)
            self._wm_spare_ready = True
            return True
        return self._prepare_ring()

    def _prepare_ring(self):
        self._advance_tail()
        if self._prepared < PREPARE_AHEAD and self._used + self._prepared < self.ring:
            i = (self._head + 1 + self._prepared) % self.ring
            self._erase(self._block(i))
            self._keys[i] = 0
            self._sector_lost[i] = 0
            self._prepared += 1
            return True
        return False

    # -- upload ----------------------------------------------------------------------------------

    def _walk(self, i=-1, start=HEADER_SIZE, last=0):
        """(block, buf, offset, length, seq, ring index) of every good record from the tail (or from
        offset `start` of ring sector `i`, after sequence number `last`) to the head."""
        if i < 0:
            i = self._tail
        for k in range((i - self._tail) % self.ring, self._used):
            block = self._block(i)
            sealed = self._header(block)[3]
            buf = self._read_sector(block)
            for p, n, seq in self._entries(buf, last, self._keys[i], start):
                last = seq
                yield block, buf, p, n, seq, i
            start = HEADER_SIZE
            lost = self._scan_lost
            if self._scan_tail >= 0 and not sealed and k < self._used - 1:
                # damage up to the sector's end: the records up to the next sector's first are gone
                following = self._keys[(i + 1) % self.ring]
                lost += following - last - 1 if following > last > 0 else 1
            if lost:
                self._note_damage(i, lost)
            i = (i + 1) % self.ring

    def pending(self, limit, max_bytes):
        """Up to `limit` unacknowledged records (bytes), oldest first, totalling at most max_bytes."""
        out = []
        size = 0
        if limit <= 0:
            return out
        for _, buf, p, n, seq, _ in self._walk():
            if seq <= self.acked:
                continue
            if size + n > max_bytes:
                break
            out.append(bytes(buf[p + 1:p + 1 + n]))
            size += n
            if len(out) >= limit:
                break
        return out

    def read_after(self, seq, out, room, terminal=None):
        """The good records after `seq`, oldest first, copied back to back into the bytearray `out`: as
        many as one RECORDS body of at most `room` bytes holds (protocol.link.records_size, terminal
        id elided when every record carries `terminal`).  A list of memoryviews into `out`.

        A cursor keeps where the last record handed out ended (ring sector and offset), so the next
        call for the records after it reads on from there: records already handed out are not read
        or MAC-checked again.  Any other `seq` (a new session, records left over) walks from the tail."""
        views = []
        seq = max(seq, self.acked)
        if seq == self._cur_seq and (self._cur_i - self._tail) % self.ring < self._used:
            walk = self._walk(self._cur_i, self._cur_p, seq)
        else:
            walk = self._walk()
        body = 2  # mode and count
        elide = terminal is not None
        used = 0
        for _, buf, p, n, s, i in walk:
            if s <= seq:
                continue
            rec = memoryview(buf)[p + 1:p + 1 + n]
            e = elide and bytes(rec[_TID:_TID + _TID_SIZE]) == terminal
            size = body + 1 + n - (_TID_SIZE * (len(views) + 1) if e else 0)
            if size > room or used + n > len(out) or len(views) >= 255:
                break
            out[used:used + n] = rec
            views.append(memoryview(out)[used:used + n])
            used += n
            body += 1 + n
            elide = e
            self._cur_seq, self._cur_i, self._cur_p = s, i, p + n + ENTRY_OVERHEAD
        return views

    def ack(self, seq):
        """The host stored everything up to `seq`: persist the watermark (one slot program).

        Erases at most one sector, and only when none is prepared (see prepare())."""
        seq = min(seq, self.next_seq - 1)
        if seq <= self.acked:
            return
        self._write_slot(seq)
        self.acked = seq
        self._advance_tail()
        if not self._prepared:
            # Nothing erased ahead (the area was full until this ACK freed a sector): erase one now,
            # right after the batch, while the link is quiet, so that the next tap need not.
            self._prepare_ring()

    def recent(self, count):
        """The last `count` records of the two newest sectors (for duplicate-tap checks after a reboot)."""
        if not self._used or count <= 0:
            return []
        out = []
        last = 0
        sectors = min(2, self._used)
        for k in range(sectors):
            buf = self._read_sector(self._block((self._head - sectors + 1 + k) % self.ring))
            for p, n, seq in self._entries(buf, last):
                last = seq
                out.append(bytes(buf[p + 1:p + 1 + n]))
                if len(out) > count:
                    out.pop(0)
        return out
