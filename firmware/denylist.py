"""The deny list: credential tokens the acquirer declined, refused at their next tap.

Kept in flash as one sorted file of 16-byte tokens and searched by binary search with seek/read,
so RAM use does not depend on the list's size (a county's list may hold many thousands of cards).
Updates arrive as deltas with a version; applying one merges the sorted file with the sorted delta
into a new file, streaming, and replaces the old file atomically, so a power cut leaves either the
old or the new list.

    file: "ZDL1" | version (4, LE) | count (4, LE) | count x token (16), ascending
"""

import os
import struct

from firmware import fsutil

MAGIC = b"ZDL1"
HEADER = 12
TOKEN = 16


class DenyListError(ValueError):
    pass


class DenyList:
    def __init__(self, path):
        self.path = path
        self.version = 0
        self.count = 0
        self._buf = bytearray(TOKEN)
        self.load()

    def load(self):
        """Read the header; a missing file is an empty list, a damaged one is reported and emptied."""
        self.version = 0
        self.count = 0
        try:
            with open(self.path, "rb") as f:
                head = f.read(HEADER)
                size = f.seek(0, 2)
        except OSError:
            return
        if len(head) != HEADER or head[:4] != MAGIC:
            raise DenyListError("deny list file has a bad header")
        version, count = struct.unpack("<II", head[4:])
        if size != HEADER + count * TOKEN:
            raise DenyListError("deny list file is %d bytes, its header says %d" % (size, HEADER + count * TOKEN))
        self.version = version
        self.count = count

    def contains(self, token):
        if not self.count:
            return False
        token = bytes(token)
        buf = self._buf
        with open(self.path, "rb") as f:
            lo, hi = 0, self.count
            while lo < hi:
                mid = (lo + hi) // 2
                f.seek(HEADER + mid * TOKEN)
                f.readinto(buf)
                if buf == token:
                    return True
                if bytes(buf) < token:
                    lo = mid + 1
                else:
                    hi = mid
        return False

    def apply(self, version, add=(), remove=()):
        """Move to `version` by adding and removing tokens; older or equal versions are ignored."""
        if version <= self.version:
            return False
        add = sorted(set(bytes(t) for t in add))
        drop = set(bytes(t) for t in remove)
        for t in add:
            if len(t) != TOKEN:
                raise DenyListError("a deny-list token must be 16 bytes")
        tmp = self.path + ".new"
        fsutil.makedirs(self.path[: self.path.rfind("/")])
        count = 0
        with open(tmp, "wb") as out:
            out.write(MAGIC + struct.pack("<II", version, 0))
            i = 0
            last = None
            for old in self._tokens():
                while i < len(add) and add[i] < old:
                    count += self._put(out, add[i], drop, last)
                    last = add[i]
                    i += 1
                count += self._put(out, old, drop, last)
                last = old
            while i < len(add):
                count += self._put(out, add[i], drop, last)
                last = add[i]
                i += 1
            out.seek(4)
            out.write(struct.pack("<II", version, count))
        os.rename(tmp, self.path)
        self.version = version
        self.count = count
        return True

    @staticmethod
    def _put(out, token, drop, last):
        if token in drop or token == last:
            return 0
        out.write(token)
        return 1

    def _tokens(self):
        if not self.count:
            return
        with open(self.path, "rb") as f:
            f.seek(HEADER)
            for _ in range(self.count):
                yield f.read(TOKEN)
