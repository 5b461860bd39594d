"""Deltas into the deny list (firmware/denylist.py): streamed merges of sorted tables and the writer
of a new table.  Loaded only when a delta arrives, so a terminal that only looks tokens up does not
keep this code in RAM.

Every input is an ascending stream of (key, op): a table's entries, a delta's additions (op 1) and
removals (op 0) read from the staged bundle in pieces.  The output is written to "<file>.new" and
switched with one rename; nothing is held in RAM but a few buffers of _PIECE bytes.  A power cut
while writing leaves a "<file>.new" behind, which the next apply overwrites.
"""

import os
import struct

from firmware import denylist, fsutil
from firmware.denylist import HEADER, KEY, TOKEN, DenyListError

BASE = 0
OVERLAY = 1
OVERLAY_MAX = 4096  # overlay entries before a delta is merged into a new base (28 KB of flash)
MAX_BITS = 14  # at most 2**14 buckets (64 KB of bucket starts): denylist.open_table checks it
PER_BUCKET = 32  # entries per bucket the bucket count aims at
LAYOUT = "<4sBBBBIIII"  # the table header (firmware/denylist.py)
_PIECE = 504  # bytes read or written at a time while merging


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


def entries(t):
    """(key, op) of every entry of the table `t` (denylist.open_table), ascending, read in pieces."""
    f, width, count = t[0], t[1], t[3]
    per = _PIECE // width
    buf = bytearray(per * width)
    i = 0
    while i < count:
        n = min(per, count - i)
        f.seek(HEADER + i * width)
        f.readinto(memoryview(buf)[: n * width])
        for j in range(n):
            at = j * width
            yield bytes(buf[at : at + KEY]), (buf[at + KEY] if width > KEY else 1)
        i += n


def convert_old(path):
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
    while True:
        if x is None:
            if y is None:
                return
            yield y
            y = _next(b)
        elif y is None or x[0] < y[0]:
            yield x
            x = _next(a)
        elif y[0] < x[0]:
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
        self.f.write(bytes(HEADER))

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
        """Entries, denylist.bucket starts and header on flash, file closed."""
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
        self.f.write(struct.pack(LAYOUT, denylist.MAGIC, self.kind, KEY + self.kind, self.bits, 0,
                                 self.version, self.base, self.count, self.listed))
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


def apply(d, version, add=(), remove=()):
    """Move to `version` by adding and removing tokens (lists held in RAM: tests and small deltas);
    older or equal versions are ignored."""
    if version <= d.version:
        return False
    add = sorted(set(bytes(t) for t in add))
    remove = sorted(set(bytes(t) for t in remove))
    for t in add + remove:
        if len(t) != TOKEN:
            raise DenyListError("a deny-list token must be 16 bytes")
    _written(d, version, _listed([t[:KEY] for t in add], 1), _listed([t[:KEY] for t in remove], 0),
             len(add) + len(remove))
    return True


def apply_staged(d, path, offset, version, n_add, n_remove, ordered):
    """Move to `version` with the delta in the file `path` (protocol/bundle.py: n_add then n_remove
    16-byte tokens from `offset`).  `ordered`: each part ascending, streamed from flash; otherwise
    (the old format, at most a few hundred tokens) sorted in RAM first."""
    if version <= d.version:
        return False
    with open(path, "rb") as fa, open(path, "rb") as fr:
        if ordered:
            adds = _tokens(fa, offset, n_add, 1, True)
            removes = _tokens(fr, offset + n_add * TOKEN, n_remove, 0, True)
        else:
            adds = _listed(sorted(k for k, _ in _tokens(fa, offset, n_add, 1, False)), 1)
            removes = _listed(sorted(k for k, _ in _tokens(fr, offset + n_add * TOKEN, n_remove, 0, False)), 0)
        _written(d, version, adds, removes, n_add + n_remove)
    return True


def _written(d, version, adds, removes, n):
    """_apply, with a flash that fails (full, worn) reported as a reason; the list is then whichever of
    the old and the new one is in flash."""
    try:
        _apply(d, version, adds, removes, n)
    except OSError as e:
        try:
            d.load()
        except (OSError, DenyListError):  # the flash fails reads too: the list is read again at boot
            d.close()
        raise DenyListError("deny list v%d not written (flash error %s): v%d stays" % (version, e, d.version))


def _apply(d, version, adds, removes, n):
    base, over = d.base, d.overlay
    over_count = over[3] if over else 0
    changes = _union(entries(over) if over else _nothing(), _union(adds, removes))  # a removal wins
    fsutil.makedirs(d.path[: d.path.rfind("/")])
    limit = OVERLAY_MAX if d.overlay_max is None else d.overlay_max
    if over_count + n <= limit:
        w = _Writer(d.path + ".ovl.new", OVERLAY, _bits(over_count + n), version, base[4] if base else 0)
        buf = bytearray(8)
        try:
            for key, op in changes:
                if op != (base is not None and denylist.find(base, key, buf) == 1):  # what differs from the base
                    w.put(key, op)
            w.finish()
        except BaseException:
            w.abandon()
            raise
        if over is not None:
            over[0].close()
        os.rename(d.path + ".ovl.new", d.path + ".ovl")  # the switch
    else:
        merged = _union(entries(base) if base else _nothing(), changes)
        w = _Writer(d.path + ".new", BASE, _bits((base[3] if base else 0) + over_count + n), version, 0)
        try:
            for key, op in merged:
                if op:
                    w.put(key, 1)
            w.finish()
        except BaseException:
            w.abandon()
            raise
        d.close()
        os.rename(d.path + ".new", d.path)  # the switch: the old overlay is stale from here
        try:
            os.remove(d.path + ".ovl")
        except OSError:
            pass
        # deltas that rebuilt the base, for benchmarks and tests; set here only, so that the name costs the
        # terminal nothing until a delta arrives
        setattr(d, "merges", getattr(d, "merges", 0) + 1)  # noqa: B010
    d.load()


def flash_bytes(d):
    """Bytes the list `d` takes in flash (both tables)."""
    n = 0
    for t in (d.base, d.overlay):
        if t is not None:
            n += HEADER + t[3] * t[1] + 4 * ((1 << t[2]) + 1)
    return n
