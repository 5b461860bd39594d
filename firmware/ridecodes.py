"""Ride codes on the terminal: trusted roots, revoked issuers, codes already used, and the decision.

Loaded on the first ride code a terminal sees (firmware/decision.py), so a terminal that never sees one
never pays their heap.  Roots come from /flash/keys/ride-roots (`root <id> sm2|p256 <X||Y hex>` lines,
written by `provision --ride-roots`); revoked issuer keys from the active fleet bundle of kind
protocol.fleet.KIND_RIDE_REVOKED (the Decider's active configuration, replaced when one is activated).

Replay: the (rider token, counter) of every accepted code stays in RAM while the code could still be
fresh (ridecode.WINDOW after its generation time); at most MAX_USED, oldest first out.  After a reboot
the codes among the journal's recent records (decision.RECENT) are used again from the start, so a code
accepted just before a power cut stays used.
"""

import gc
import struct
import time

from firmware import decision
from protocol import record, ridecode
from protocol.fleet import KIND_RIDE_REVOKED

ROOTS_FILE = "/keys/ride-roots"
MAX_USED = 128  # far more codes than one reader accepts in a minute

_REASONS = {
    ridecode.MALFORMED: record.REASON_RIDE_MALFORMED,
    ridecode.NO_CLOCK: record.REASON_RIDE_NO_CLOCK,
    ridecode.UNKNOWN_ROOT: record.REASON_RIDE_UNKNOWN_ROOT,
    ridecode.ISSUER_REVOKED: record.REASON_RIDE_ISSUER_REVOKED,
    ridecode.ISSUER_SIGNATURE: record.REASON_RIDE_ISSUER_SIGNATURE,
    ridecode.ISSUER_EXPIRED: record.REASON_RIDE_ISSUER_EXPIRED,
    ridecode.USER_SIGNATURE: record.REASON_RIDE_USER_SIGNATURE,
    ridecode.USER_EXPIRED: record.REASON_RIDE_USER_EXPIRED,
    ridecode.CODE_SIGNATURE: record.REASON_RIDE_CODE_SIGNATURE,
    ridecode.TOO_OLD: record.REASON_RIDE_TOO_OLD,
    ridecode.FUTURE: record.REASON_RIDE_FUTURE,
    ridecode.ALREADY_USED: record.REASON_RIDE_ALREADY_USED,
}


def load_roots(path):
    """({root id: (alg, key)}, lines skipped) from the roots file; no file: no roots (every code declined)."""
    roots = {}
    bad = 0
    try:
        with open(path) as f:
            for line in f:
                try:
                    entry = ridecode.parse_root_line(line)
                except ridecode.RideCodeError:
                    bad += 1
                    continue
                if entry is not None:
                    roots[entry[0]] = (entry[1], entry[2])
    except OSError:
        pass
    return roots, bad


def load_revoked(root):
    """The revoked (issuer, key id) pairs of the active ride-revocation fleet bundle, or an empty set."""
    from firmware.config import trust

    if root is None or not trust.has_fleet_bundles(root):
        return set()
    from firmware.config import fleet

    active = fleet.load(root, KIND_RIDE_REVOKED)
    return set() if active is None else active[1]


class Used:
    """(token, counter) of accepted codes still inside their freshness window."""

    def __init__(self):
        self.entries = []  # (token, counter, generated), oldest accepted first

    def prune(self, now):
        self.entries = [e for e in self.entries if now - e[2] <= ridecode.WINDOW]

    def add(self, token, counter, generated):
        self.entries.append((token, counter, generated))
        if len(self.entries) > MAX_USED:
            self.entries.pop(0)

    def __contains__(self, pair):
        for token, counter, _ in self.entries:
            if (token, counter) == pair:
                return True
        return False


class Rides:
    def __init__(self, root, journalled=()):
        """`root`: the flash mount point (None: no flash, so no roots); `journalled`: (token, EXT_RIDE value)
        of accepted codes in the journal's recent records."""
        self.root = root
        roots, bad = load_roots(root + ROOTS_FILE) if root is not None else ({}, 0)
        print("ride roots: %d trusted, %d bad lines" % (len(roots), bad))
        self.verifier = ridecode.Verifier(roots)
        self.used = Used()
        for token, ext in journalled:
            if ext is not None and len(ext) == 21:
                self.used.add(token, *struct.unpack_from(">II", ext, 11))
        for alg in set(entry[0] for entry in roots.values()):  # the generator tables: constant modules
            gc.collect()
            ridecode.CURVES[alg].g_table()

    def decide(self, decider, line, now):
        """The Decision for a ride code (decision.py calls this for every "ZR1." line)."""
        kind = record.KIND_RIDE_CODE
        active = decider.active
        if active.ride_revoked is None:  # first code since boot: the revocations in flash
            decider.active = active = active.with_bundle(KIND_RIDE_REVOKED, load_revoked(self.root))
        self.verifier.revoked = active.ride_revoked
        if now is not None and now < decision.CLOCK_VALID_FROM:
            now = None
        if now is not None:
            self.used.prune(now)
        try:
            fields = ridecode.decode(line)
        except ridecode.RideCodeError:
            return decision.Decision(decision.DECLINE, record.REASON_RIDE_MALFORMED, kind)
        token = ridecode.token(fields)
        verdict = self.verifier.check_fields(fields, now, _Pairs(self.used, token))
        if verdict != ridecode.OK:
            return decision.Decision(decision.DECLINE, _REASONS.get(verdict, record.REASON_RIDE_MALFORMED), kind,
                                     token=token)
        deny = active.deny
        if deny is not None and deny.contains(token):
            return decision.Decision(decision.DECLINE, record.REASON_DENY_LISTED, kind, token=token)
        ext = struct.pack(">HB8sIIH", fields["issuer"], fields["issuer_key_id"], fields["user_id"],
                          fields["counter"], fields["generated"], fields["product"])
        return decision.Decision(decision.ACCEPT, kind=kind, token=token, extensions=[(record.EXT_RIDE, ext)],
                                 amount=decider.amount_for(kind), atc=(fields["counter"], fields["generated"]))

    def prepare_idle(self):
        """While no passenger waits: the comb table of one new issuer key (ridecode.Verifier.prepare_pending)."""
        t0 = time.ticks_ms()
        if self.verifier.prepare_pending():
            print("ride codes: issuer key table built in %d ms" % time.ticks_diff(time.ticks_ms(), t0))

    def remember(self, token, atc):
        """A code was journalled as accepted: the same (rider, counter) is "already used" from now on."""
        self.used.add(token, atc[0], atc[1])


class _Pairs:
    """`used` as ridecode.Verifier asks it: (user id, counter) in it, for the rider whose token is `token`."""

    def __init__(self, used, token):
        self.used = used
        self.token = token

    def __contains__(self, pair):
        return (self.token, pair[1]) in self.used

