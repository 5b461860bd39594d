"""The transaction journal of the first slice: append-only segment files on the /flash littlefs.

Each entry is  A5 | length (1) | record | CRC-32 (4, LE).  append() returns only after littlefs has
synced the entry (file flush commits it atomically), so an entry is either wholly there after a power
cut or not at all; the terminal signals "accepted" only after append() returned.  Segments hold
SEGMENT_RECORDS entries; a segment whose records the host acknowledged is deleted.  The acknowledged
watermark is a small file replaced atomically after each ACK.  RAM use does not grow with the number
of records: recovery streams through the files with one record-sized buffer.

(The journal issue replaces this with a log on the raw journal partition; the interface stays.)
"""

import os
import struct

from firmware import fsutil
from protocol import record
from protocol.crc import crc32

MAGIC = 0xA5
SEGMENT_RECORDS = 64
_NAME_DIGITS = 8


class Journal:
    def __init__(self, root, segment_records=SEGMENT_RECORDS):
        self.root = root
        self.segment_records = segment_records
        self.next_seq = 1
        self.acked = 0
        self.dropped = 0  # entries found damaged on recovery (reported, never silently reused)
        self._segments = []  # first sequence number of each segment file, ascending
        self._active = None
        self._active_count = 0
        self._buf = bytearray(2 + record.MAX_SIZE + 4)

    # -- recovery --------------------------------------------------------------------------

    def open(self):
        fsutil.makedirs(self.root)
        self.acked = self._read_watermark()
        self._segments = sorted(int(n[:_NAME_DIGITS]) for n in os.listdir(self.root)
                                if n.endswith(".seg") and len(n) == _NAME_DIGITS + 4)
        last = self.acked
        count = 0
        damaged = False
        for first in self._segments:
            count = 0
            damaged = False
            for seq, _ in self._entries(first):
                last = max(last, seq)
                count += 1
            damaged = self._last_scan_damaged
            if damaged:
                self.dropped += 1
                # Retire the number the damaged entry carried: it may have been accepted and uploaded
                # already (never reuse a sequence), and the next segment must not be named like this one.
                last = max(last, first + count)
        self.next_seq = last + 1
        # Append to the newest segment unless it is full or its tail is damaged.
        if self._segments and not damaged and count < self.segment_records:
            self._active_count = count
        else:
            self._active_count = self.segment_records
        return self

    def _read_watermark(self):
        try:
            with open(self.root + "/acked", "rb") as f:
                data = f.read()
        except OSError:
            return 0
        if len(data) != 8 or crc32(data[:4]) != struct.unpack("<I", data[4:])[0]:
            self.dropped += 1
            return 0
        return struct.unpack("<I", data[:4])[0]

    def _path(self, first):
        return "%s/%08d.seg" % (self.root, first)

    def _entries(self, first):
        """(seq, record memoryview) for each intact entry of a segment, stopping at damage."""
        self._last_scan_damaged = False
        buf = self._buf
        with open(self._path(first), "rb") as f:
            while True:
                head = f.read(2)
                if not head:
                    return
                if len(head) < 2 or head[0] != MAGIC:
                    break
                n = head[1]
                body = memoryview(buf)[: n + 4]
                if f.readinto(body) != n + 4:
                    break
                rec = body[:n]
                if crc32(rec) != struct.unpack("<I", body[n:])[0] or n < record.HEADER_SIZE:
                    break
                yield record.seq_of(rec), rec
        self._last_scan_damaged = True

    # -- appending -------------------------------------------------------------------------

    def append(self, build):
        """Durably append the record `build(seq)` returns; returns its sequence number."""
        seq = self.next_seq
        rec = build(seq)
        if self._active_count >= self.segment_records:
            self._segments.append(seq)
            self._active_count = 0
        entry = bytearray([MAGIC, len(rec)])
        entry += rec
        entry += struct.pack("<I", crc32(rec))
        with open(self._path(self._segments[-1]), "ab") as f:
            f.write(entry)
            f.flush()  # littlefs commits the file here: from now on the record survives power loss
        self._active_count += 1
        self.next_seq = seq + 1
        return seq

    # -- upload ----------------------------------------------------------------------------

    def depth(self):
        return self.next_seq - 1 - self.acked

    def pending(self, limit, max_bytes):
        """Up to `limit` unacknowledged records (bytes), oldest first, totalling at most max_bytes."""
        out = []
        size = 0
        for first in self._segments:
            if self._segment_end(first) <= self.acked:
                continue
            entries = self._entries(first)
            try:
                for seq, rec in entries:
                    if seq <= self.acked:
                        continue
                    if len(out) >= limit or size + len(rec) > max_bytes:
                        return out
                    out.append(bytes(rec))
                    size += len(rec)
            finally:
                entries.close()  # closes the segment file now, not at the next garbage collection
        return out

    def _segment_end(self, first):
        i = self._segments.index(first)
        if i + 1 < len(self._segments):
            return self._segments[i + 1] - 1
        return self.next_seq - 1

    def ack(self, seq):
        """The host stored everything up to `seq`: persist the watermark, delete finished segments."""
        if seq <= self.acked:
            return
        seq = min(seq, self.next_seq - 1)
        data = struct.pack("<I", seq)
        fsutil.write_atomic(self.root + "/acked", data + struct.pack("<I", crc32(data)))
        self.acked = seq
        while len(self._segments) > 1 and self._segments[1] - 1 <= seq:
            os.remove(self._path(self._segments.pop(0)))

    def recent(self, count):
        """The last `count` records of the newest segment (for duplicate-tap checks after a reboot)."""
        if not self._segments:
            return []
        out = []
        for _, rec in self._entries(self._segments[-1]):
            out.append(bytes(rec))
            if len(out) > count:
                out.pop(0)
        return out
