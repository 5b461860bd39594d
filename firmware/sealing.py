"""The terminal's sealer: card data encrypted to the collector's public key (protocol/seal.py).

/flash/keys/seal.pub holds the collector's RSA-2048 modulus as 512 hex digits (exponent 65537), written by
provisioning.  The epoch key lives in RAM only, so a flash image reveals nothing: a reboot starts a new
epoch, and so does a new host key (provisioning reboots the board).  The RSA wrap of the next epoch key is
done at boot and when idle (`prepare`), never while a passenger waits; the first tap of an epoch only
journals its two key records before its own record.
"""

import os

from protocol import record, rsa, seal

PUB_FILE = "keys/seal.pub"
EPOCH_RECORDS = 256  # records sealed under one epoch key before the next one takes over


class Unavailable(Exception):
    """Card data cannot be sealed now; args[0] is the record.REASON_* the tap declines with."""


def load_host_key(root):
    """The collector's modulus from /flash/keys/seal.pub, or None (absent or not an RSA-2048 modulus)."""
    try:
        with open(root + "/" + PUB_FILE) as f:
            return rsa.modulus(bytes.fromhex(f.read().strip()))
    except (OSError, ValueError):
        return None


class Sealer:
    """sealer(plaintext, token) -> EXT_EMV_SEALED value, for decision.Decider(sealer=...)."""

    def __init__(self, n, journal, terminal, clock, random=os.urandom):
        self.n = n
        self.journal = journal
        self.terminal = terminal
        self.clock = clock  # () -> seconds since 1970, for the key records' time
        self.random = random
        self._next = None  # (key, wrapped): wrapped off the tap path, waiting for its first tap
        self._key = None
        self._key_id = self._count = 0

    def prepare(self):
        """Wrap the next epoch key if none is waiting (an RSA public operation): at boot and when idle.
        Returns (key, wrapped key)."""
        ready = self._next
        if ready is None:
            key = self.random(seal.KEY_SIZE)
            ready = self._next = (key, self._wrap(key))
        return ready

    def _wrap(self, key):
        """RSA-OAEP, loaded for the wrap and dropped after: it runs once per epoch, its code need not stay in RAM."""
        import sys

        import protocol
        from protocol import oaep

        try:
            return oaep.encrypt(key, self.n, self.random(32))
        finally:
            del sys.modules["protocol.oaep"]
            delattr(protocol, "oaep")

    def _start_epoch(self):
        """Journal the waiting epoch key's records; the key id is the first one's sequence number."""
        from firmware.journal import JournalFull

        key, wrapped = self.prepare()  # done already unless no idle time came since the last epoch started
        first = self.journal.next_seq
        try:
            if self.journal.full:
                raise JournalFull()
            for part in seal.key_parts(first, seal.fingerprint(self.n), wrapped):
                self.journal.append(lambda seq, part=part: record.encode(
                    self.terminal, seq, int(self.clock()), record.KIND_SEAL_KEY, 0, 0, 0, 0, 0, record.NO_TOKEN,
                    ((record.EXT_SEAL_KEY, part),)))
        except JournalFull:  # no key record, no sealed tap: the tap declines, nothing is kept unsealed
            raise Unavailable(record.REASON_JOURNAL_FULL) from None
        self._next = None
        self._key, self._key_id, self._count = key, first, 0

    def __call__(self, plaintext, token):
        if self._key is None or self._count >= EPOCH_RECORDS:
            self._start_epoch()
        self._count += 1
        return seal.seal_data(self._key_id, self._key, self._count - 1, plaintext, token)
