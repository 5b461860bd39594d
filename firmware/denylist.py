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
past OVERLAY_MAX entries, base, overlay and delta are merged into a new base instead, and that one
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
it is found.
"""

import os
import struct

from firmware import fsutil

MAGIC = b"ZDL2"
OLD_MAGIC = b"ZDL1"
HEAD = 24
TOKEN = 16
KEY = 6  # bytes of a token a table keeps (see the false-positive rate above)
BASE = 0
OVERLAY = 1
OVERLAY_MAX = 4096  # overlay entries before a delta is merged into a new base (28 KB of flash)
MAX_BITS = 14
PER_BUCKET = 32  # entries per bucket the bucket count aims at
_PIECE = 504  # bytes read or written at a time while merging
_LAYOUT = "<4sBBBBIIII"


class DenyListError(ValueError):
    pass


def _bits(n):
    b = 0
    while b < MAX_BITS and (n >> b) > PER_BUCKET:
        b += 1
    return b


def _bucket(key, bits):
    return ((key[0] << 16) | (key[1] << 8) | key[2]) >> (24 - bits)


def _next(it):
    try:
        return next(it)
    except StopIteration:
        return None


class _Table:
    """One open table file: the header, and lookups by seek/read."""

    def __init__(self, f, kind, bits, version, base, count, listed):
        self.f = f
        self.kind = kind
        self.width = KEY + kind
        self.bits = bits
        self.version = version
        self.base = base
        self.count = count
        self.listed = listed
        self.index = HEAD + count * self.width
        self._bounds = bytearray(8)
        self._op = bytearray(1)

    def find(self, key):
        """The op of `key` (base: 1) or -1 when the table does not hold it."""
        if not self.count:
            return -1
        f = self.f
        f.seek(self.index + 4 * _bucket(key, self.bits))
        f.readinto(self._bounds)
        lo, hi = struct.unpack("<II", self._bounds)
        width = self.width
        while lo < hi:
            mid = (lo + hi) >> 1
            f.seek(HEAD + mid * width)
            got = f.read(KEY)
            if got == key:
                if width == KEY:
                    return 1
                f.readinto(self._op)
                return self._op[0]
            if got < key:
                lo = mid + 1
            else:
                hi = mid
        return -1

    def entries(self):
        """(key, op) of every entry, ascending, read in pieces."""
        width = self.width
        per = _PIECE // width
        buf = bytearray(per * width)
        i = 0
        while i < self.count:
            n = min(per, self.count - i)
            self.f.seek(HEAD + i * width)
            self.f.readinto(memoryview(buf)[: n * width])
            for j in range(n):
                at = j * width
                yield bytes(buf[at : at + KEY]), (buf[at + KEY] if width > KEY else 1)
            i += n

    def close(self):
        self.f.close()


def _open_table(path, kind):
    """The table at `path`, None if there is none; DenyListError if it is damaged."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    try:
        head = f.read(HEAD)
        size = f.seek(0, 2)
        if len(head) >= 12 and head[:4] == OLD_MAGIC and kind == BASE:
            f.close()
            return _open_table(_convert_old(path), BASE)
        if len(head) != HEAD or head[:4] != MAGIC:
            raise DenyListError("deny list file %s has a bad header" % path)
        _, k, width, bits, _, version, base, count, listed = struct.unpack(_LAYOUT, head)
        if k != kind or width != KEY + kind or bits > MAX_BITS or listed > count:
            raise DenyListError("deny list file %s has a bad header" % path)
        want = HEAD + count * width + 4 * ((1 << bits) + 1)
        if size != want:
            raise DenyListError("deny list file %s is %d bytes, its header says %d" % (path, size, want))
    except (DenyListError, OSError, ValueError):
        f.close()
        raise
    return _Table(f, kind, bits, version, base, count, listed)


def _convert_old(path):
    """Rewrite a "ZDL1" list (sorted 16-byte tokens) as a base table, atomically; its path."""
    with open(path, "rb") as f:
        head = f.read(12)
        version, count = struct.unpack("<II", head[4:])
        if f.seek(0, 2) != 12 + count * TOKEN:
            raise DenyListError("deny list file is %d bytes, its header says %d" % (f.seek(0, 2), 12 + count * TOKEN))
        w = _Writer(path + ".new", BASE, _bits(count), version, 0)
        try:
            for key, _ in _tokens(f, 12, count, 1, False):
                w.put(key, 1)
            w.finish()
        except BaseException:
            w.abandon()
            raise
    os.rename(path + ".new", path)
    return path


def _tokens(f, offset, n, op, ordered):
    """(key, op) of `n` 16-byte tokens at `offset` of the open file `f`; with `ordered`, each token
    must be above the one before (a sorted delta), else DenyListError."""
    per = _PIECE // TOKEN
    buf = bytearray(per * TOKEN)
    prev = None
    i = 0
    while i < n:
        k = min(per, n - i)
        f.seek(offset + i * TOKEN)
        if f.readinto(memoryview(buf)[: k * TOKEN]) != k * TOKEN:
            raise DenyListError("deny-list bundle is truncated")
        for j in range(k):
            token = bytes(buf[j * TOKEN : (j + 1) * TOKEN])
            if ordered:
                if prev is not None and token <= prev:
                    raise DenyListError("deny-list bundle tokens are not in ascending order")
                prev = token
            yield token[:KEY], op
        i += k


def _listed(keys, op):
    for key in keys:
        yield key, op


def _union(a, b):
    """Two ascending (key, op) streams as one; on an equal key, b's op."""
    x = _next(a)
    y = _next(b)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            yield x
            x = _next(a)
        elif x is None or y[0] < x[0]:
            yield y
            y = _next(b)
        else:
            yield y
            x = _next(a)
            y = _next(b)


def _nothing():
    return iter(())


class _Writer:
    """Writes a table from keys given in ascending order.  Bucket starts go to a side file while the
    entries stream out, and are appended once the entries are all written."""

    def __init__(self, path, kind, bits, version, base):
        self.path = path
        self.kind = kind
        self.bits = bits
        self.version = version
        self.base = base
        self.count = 0
        self.listed = 0
        self.bucket = -1
        self.last = None
        self.out = bytearray(_PIECE)
        self.n = 0
        self.f = open(path, "wb")
        self.ix = open(path + ".ix", "wb")
        self.f.write(bytes(HEAD))

    def put(self, key, op):
        if key == self.last:
            return
        self.last = key
        b = _bucket(key, self.bits)
        while self.bucket < b:
            self.bucket += 1
            self.ix.write(struct.pack("<I", self.count))
        n = self.n
        if n + KEY + 1 > _PIECE:
            self.f.write(memoryview(self.out)[:n])
            n = 0
        self.out[n : n + KEY] = key
        n += KEY
        if self.kind == OVERLAY:
            self.out[n] = op
            n += 1
        self.n = n
        self.count += 1
        self.listed += op

    def finish(self):
        """Entries, bucket starts and header on flash, file closed."""
        self.f.write(memoryview(self.out)[: self.n])
        while self.bucket < (1 << self.bits):
            self.bucket += 1
            self.ix.write(struct.pack("<I", self.count))
        self.ix.close()
        with open(self.path + ".ix", "rb") as ix:
            while True:
                n = ix.readinto(self.out)
                if not n:
                    break
                self.f.write(memoryview(self.out)[:n])
        self.f.seek(0)
        self.f.write(struct.pack(_LAYOUT, MAGIC, self.kind, KEY + self.kind, self.bits, 0, self.version,
                                 self.base, self.count, self.listed))
        self.f.close()
        os.remove(self.path + ".ix")

    def abandon(self):
        for f in (self.f, self.ix):
            try:
                f.close()
            except Exception:  # noqa: BLE001  (whatever failed the write fails the close too)
                pass
        for p in (self.path, self.path + ".ix"):
            try:
                os.remove(p)
            except OSError:
                pass


class DenyList:
    def __init__(self, path, overlay_max=OVERLAY_MAX):
        self.path = path
        self.overlay_path = path + ".ovl"
        self.overlay_max = overlay_max
        self.version = 0
        self.count = 0
        self.merges = 0  # deltas that rebuilt the base (the rest only rewrote the overlay)
        self._base = None
        self._over = None
        self.load()

    def load(self):
        """Open the tables; a missing list is empty, a damaged one is reported (DenyListError)."""
        self.close()
        for p in (self.path + ".new", self.overlay_path + ".new"):  # a merge a power cut interrupted
            for q in (p, p + ".ix"):
                try:
                    os.remove(q)
                except OSError:
                    pass
        self._base = _open_table(self.path, BASE)
        try:
            over = _open_table(self.overlay_path, OVERLAY)
        except DenyListError:
            self.close()
            raise
        if over is not None and over.base != (self._base.version if self._base else 0):
            over.close()  # made for a base that a merge has replaced since
            os.remove(self.overlay_path)
            over = None
        self._over = over
        self._state()

    def _state(self):
        base, over = self._base, self._over
        self.version = over.version if over else base.version if base else 0
        self.count = (base.count if base else 0) + (2 * over.listed - over.count if over else 0)

    def close(self):
        for t in (self._base, self._over):
            if t is not None:
                t.close()
        self._base = self._over = None

    def contains(self, token):
        key = bytes(token[:KEY])
        if self._over is not None:
            op = self._over.find(key)
            if op >= 0:
                return op == 1
        return self._base is not None and self._base.find(key) == 1

    def apply(self, version, add=(), remove=()):
        """Move to `version` by adding and removing tokens (lists held in RAM: tests and small deltas);
        older or equal versions are ignored."""
        if version <= self.version:
            return False
        add = sorted(set(bytes(t) for t in add))
        remove = sorted(set(bytes(t) for t in remove))
        for t in add + remove:
            if len(t) != TOKEN:
                raise DenyListError("a deny-list token must be 16 bytes")
        self._apply(version, _listed([t[:KEY] for t in add], 1), _listed([t[:KEY] for t in remove], 0),
                    len(add) + len(remove))
        return True

    def apply_staged(self, path, offset, version, n_add, n_remove, ordered):
        """Move to `version` with the delta in the file `path` (protocol/bundle.py: n_add then n_remove
        16-byte tokens from `offset`).  `ordered`: each part ascending, streamed from flash; otherwise
        (the old format, at most a few hundred tokens) sorted in RAM first."""
        if version <= self.version:
            return False
        with open(path, "rb") as fa, open(path, "rb") as fr:
            if ordered:
                adds = _tokens(fa, offset, n_add, 1, True)
                removes = _tokens(fr, offset + n_add * TOKEN, n_remove, 0, True)
            else:
                adds = _listed(sorted(k for k, _ in _tokens(fa, offset, n_add, 1, False)), 1)
                removes = _listed(sorted(k for k, _ in _tokens(fr, offset + n_add * TOKEN, n_remove, 0, False)), 0)
            self._apply(version, adds, removes, n_add + n_remove)
        return True

    def _apply(self, version, adds, removes, n):
        base, over = self._base, self._over
        over_count = over.count if over else 0
        changes = _union(over.entries() if over else _nothing(), _union(adds, removes))  # a removal wins
        base_version = base.version if base else 0
        fsutil.makedirs(self.path[: self.path.rfind("/")])
        if over_count + n <= self.overlay_max:
            w = _Writer(self.overlay_path + ".new", OVERLAY, _bits(over_count + n), version, base_version)
            try:
                for key, op in changes:
                    if op != (base is not None and base.find(key) == 1):  # only what differs from the base
                        w.put(key, op)
                w.finish()
            except BaseException:
                w.abandon()
                raise
            if over is not None:
                over.close()
            os.rename(self.overlay_path + ".new", self.overlay_path)  # the switch
            self._over = _open_table(self.overlay_path, OVERLAY)
        else:
            merged = _union(base.entries() if base else _nothing(), changes)
            w = _Writer(self.path + ".new", BASE, _bits((base.count if base else 0) + over_count + n), version, 0)
            try:
                for key, op in merged:
                    if op:
                        w.put(key, 1)
                w.finish()
            except BaseException:
                w.abandon()
                raise
            self.close()
            os.rename(self.path + ".new", self.path)  # the switch: the old overlay is stale from here
            try:
                os.remove(self.overlay_path)
            except OSError:
                pass
            self._base = _open_table(self.path, BASE)
            self.merges += 1
        self._state()

    def flash_bytes(self):
        """Bytes the list takes in flash (both tables)."""
        n = 0
        for t in (self._base, self._over):
            if t is not None:
                n += t.index + 4 * ((1 << t.bits) + 1)
        return n
