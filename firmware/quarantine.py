"""Records the host refused (a REFUSED message), kept on flash for the technician: they are neither
stored by the host nor lost here.  The journal's watermark moves past them as usual; this file is where
they stay.  SPEC.md "REFUSED" and "Journal and durability".

    quarantine.bin: entries back to back, each  reason u8 | seq u32 LE | length u8 | record (length bytes)

length 0 when the journal no longer held the record.  Each entry is one write of a littlefs file opened
for append, so a power cut leaves whole entries only.  Bounded: at LIMIT entries further refusals are
counted in `overflow` (and shown on the console), never written, never a crash.
"""

import struct

FILE = "quarantine.bin"
LIMIT = 64
REASONS = {1: "conflict", 2: "malformed", 3: "wrong terminal", 4: "unsupported"}  # protocol/refusal.py


class Quarantine:
    def __init__(self, root):
        self.path = root + "/" + FILE
        self.count = -1  # entries in the file; counted at the first use
        self.overflow = 0  # refusals not kept: the file was full or the write failed

    def _count(self):
        n = 0
        try:
            with open(self.path, "rb") as f:
                head = bytearray(6)
                while f.readinto(head) == 6:
                    f.seek(head[5], 1)
                    n += 1
        except OSError:
            pass
        return n

    def entries(self):
        """Kept so far (the STATUS `quarantined` field counts these and the overflow)."""
        if self.count < 0:
            self.count = self._count()
        return self.count

    def keep(self, seq, reason, rec):
        """Keep one refused record (`rec` None when the journal no longer has it); True if written."""
        if self.entries() >= LIMIT:
            self.overflow += 1
            return False
        rec = rec or b""
        entry = bytearray(6 + len(rec))
        struct.pack_into("<BIB", entry, 0, reason, seq, len(rec))
        entry[6:] = rec
        try:
            with open(self.path, "ab") as f:
                f.write(entry)
        except OSError:
            self.overflow += 1
            return False
        self.count += 1
        return True

    def read(self):
        """[(seq, reason, record bytes)] of every kept entry (console, tests)."""
        out = []
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return out
        i = 0
        while i + 6 <= len(data):
            reason, seq, n = struct.unpack_from("<BIB", data, i)
            out.append((seq, reason, bytes(data[i + 6:i + 6 + n])))
            i += 6 + n
        return out
