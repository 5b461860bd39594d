"""The deny list: credential tokens the acquirer declined, refused at their next tap.

A county's list (hundreds of thousands of cards) lives in flash as two tables, each one file:

- the base, every listed token;
- the overlay, the changes since the base: a token with op 1 (listed) or 0 (removed).

A lookup asks the overlay first and the base only if the overlay does not know the token.  Each
table is sorted and bucketed by the token's leading bits, so a lookup reads one pair of bucket
bounds and binary-searches one bucket (a few dozen entries) with seek/read: RAM and time do not
depend on the list's size.

A delta (any size, its tokens sorted or sortable) is merged with the overlay into a new overlay,
which replaces the old one with one rename: the base is not rewritten.  When the overlay would grow
past denylist_merge.OVERLAY_MAX entries, base, overlay and delta are merged into a new base instead, and that one
rename switches the list (the old overlay names the old base's version, so it is stale from then
on and is deleted).  Every merge streams from flash to flash, so a power cut leaves the old list or
the new one, never a mix.

A table keeps the first KEY bytes of a token.  Tokens are keyed HMACs (protocol/tokens.py), so two
distinct tokens share a 48-bit prefix with probability 2**-48: with 200 000 entries one tap in
1.4e9 hits a listed prefix by chance (about one false "deny listed" per 40 years at 100 000 taps a
day), and a removal takes off at most that rare twin as well.

    table: "ZDL2" | kind u8 (0 base, 1 overlay) | width u8 | bits u8 | 0 | version u32 |
           base u32 (overlay: the base version it applies to) | count u32 | listed u32 |
           count x (key (KEY) [| op u8 in the overlay]), ascending | (2**bits + 1) x start u32
    integers little-endian; start[b] is the first entry whose leading `bits` bits are b.

The older single-file format ("ZDL1": version, count, sorted 16-byte tokens) is converted once when
it is found.  Writing tables is firmware/denylist_merge.py, loaded only when a delta arrives: this
module is what a terminal keeps in RAM, and it is kept to few names (every name the VM interns
costs heap on the unix port, where the heap budget test runs).
"""

import struct

MAGIC = b"ZDL2"
HEADER = 24
TOKEN = 16
KEY = 6  # bytes of a token a table keeps (see the false-positive rate above)


class DenyListError(ValueError):
    pass


def open_table(path, kind):
    """(file, width, bits, count, version, base, listed) of the table at `path` (kind 0 base, 1
    overlay), None if there is none; DenyListError if it is damaged."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    try:
        head = f.read(HEADER)
        size = f.seek(0, 2)
        if head[:4] == b"ZDL1" and not kind:
            f.close()
            from firmware import denylist_merge

            return open_table(denylist_merge.convert_old(path), 0)
        if len(head) != HEADER or head[:4] != MAGIC:
            raise DenyListError("deny list file %s has a bad header" % path)
        _, k, width, bits, _, version, base, count, listed = struct.unpack("<4sBBBBIIII", head)
        if k != kind or width != KEY + kind or bits > 14 or listed > count:
            raise DenyListError("deny list file %s has a bad header" % path)
        want = HEADER + count * width + 4 * ((1 << bits) + 1)
        if size != want:
            raise DenyListError("deny list file %s is %d bytes, its header says %d" % (path, size, want))
    except (DenyListError, OSError, ValueError):
        f.close()
        raise
    return f, width, bits, count, version, base, listed


def find(t, key, buf):
    """The op of `key` in table `t` (a base's entries: 1), -1 when it does not hold it.  One read of the
    key's bucket bounds, then a binary search of that bucket; `buf`: 8 bytes of scratch."""
    f, width, bits, count = t[0], t[1], t[2], t[3]
    if not count:
        return -1
    f.seek(HEADER + count * width + 4 * (((key[0] << 16) | (key[1] << 8) | key[2]) >> (24 - bits)))
    f.readinto(buf)
    lo, hi = struct.unpack("<II", buf)
    while lo < hi:
        mid = (lo + hi) >> 1
        f.seek(HEADER + mid * width)
        got = f.read(KEY)
        if got == key:
            return 1 if width == KEY else f.read(1)[0]
        if got < key:
            lo = mid + 1
        else:
            hi = mid
    return -1


class DenyList:
    def __init__(self, path, overlay_max=None):
        self.path = path
        self.overlay_max = overlay_max  # None: denylist_merge.OVERLAY_MAX
        self.base = self.overlay = None  # open_table() of each, or None
        self._buf = bytearray(8)
        self.load()

    def load(self):
        """Open the tables; a missing list is empty, a damaged one is reported (DenyListError)."""
        self.close()
        self.base = open_table(self.path, 0)
        try:
            over = open_table(self.path + ".ovl", 1)
        except DenyListError:
            self.close()
            raise
        if over is not None and over[5] != (self.base[4] if self.base else 0):
            over[0].close()  # made for a base that a merge has replaced since
            import os

            os.remove(self.path + ".ovl")
            over = None
        self.overlay = over
        base = self.base
        self.version = over[4] if over else base[4] if base else 0
        self.count = (base[3] if base else 0) + (2 * over[6] - over[3] if over else 0)

    def close(self):
        for t in (self.base, self.overlay):
            if t is not None:
                t[0].close()
        self.base = self.overlay = None

    def contains(self, token):
        key = bytes(token[:KEY])
        if self.overlay is not None:
            op = find(self.overlay, key, self._buf)
            if op >= 0:
                return op == 1
        return self.base is not None and find(self.base, key, self._buf) == 1

    def apply(self, version, add=(), remove=()):
        """Move to `version` by adding and removing tokens (lists held in RAM: tests and small deltas);
        older or equal versions are ignored.  False when ignored."""
        from firmware import denylist_merge

        return denylist_merge.apply(self, version, add, remove)

    def apply_staged(self, *delta):
        """Move to a version with the delta in a staged bundle file (denylist_merge.apply_staged)."""
        from firmware import denylist_merge

        return denylist_merge.apply_staged(self, *delta)
