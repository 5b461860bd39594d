"""Config bundles arriving over the link: staged in flash, resumable by offset, verified, then activated.

The host offers a bundle (CONFIG_OFFER); the terminal answers with the offset it already holds (a
CONFIG_CHUNK without data), so a download cut by a lost link or a power cut resumes where it stopped.
Chunks are appended to a staged file in order; one that arrives ahead of a gap is left unacknowledged
and comes again.  When the file is whole its SHA-256 and the offer's signature are checked and the
bundle is applied (the deny list: firmware.denylist.DenyList.apply_staged, streamed from the staged
file, atomic).  The terminal then confirms with offset = size; a delta whose base is newer than
the list it holds is answered with offset REBASE and its own version, and the host sends a delta
from there.  Bundle formats and the
signature: protocol/bundle.py and protocol/SPEC.md ("Config bundles").

Fleet bundles (protocol/fleet.py: fares, ticket keys) are staged the same way.  Before activation
the whole file must match the offer's digest, carry a valid RSA signature by a config key of
/flash/keys/config, parse, and have a higher version than the active one of its kind; activation is
the rename of the staged file to /flash/config/fleet-<kind>.bin, then `on_activate(kind, content)`
lets the terminal use it at once.  Everything is read in pieces of at most 259 bytes.

A profile (kind 6) must also be addressed to this terminal's group (/flash/config/group, written by
`provision --group`): one for another group is refused and the active profile stays.

Kind 4, the fleet token key (protocol/tokenkey.py), is sealed to this terminal: it must open under the
device key, carry the offered version and move forward; it is then kept in /flash/keys/token and
handed to `on_activate(4, (version, key))`.
"""

import gc
import hashlib
import os
import struct

from firmware import denylist, fsutil, identity
from firmware.config import fleet, trust
from protocol import bundle
from protocol import fleet as fleetfmt

REBASE = bundle.REBASE
STAGE = "/config/stage.bin"
OFFER = "/config/stage.offer"  # kind u8 | version u32 | size u32 | digest (32): which bundle is staged
MAX_SIZE = bundle.HEAD + bundle.TOKEN * bundle.MAX_TOKENS
FLEET_KINDS = (fleetfmt.KIND_TICKET_KEYS, fleetfmt.KIND_FARES, fleetfmt.KIND_RIDE_REVOKED, fleetfmt.KIND_PROFILE)
TOKEN_KEY_SIZE = 68  # protocol/tokenkey.py SIZE, not imported: that module loads only when a key arrives


class Refused(ValueError):
    """A bundle the terminal will not take; the uplink answers ERROR CONFIG_REJECTED."""


class ConfigReceiver:
    def __init__(self, root, deny, device_key, on_activate=None):
        self.root = root
        self.deny = deny
        self.on_activate = on_activate  # (kind, fares dict or ticket Keyring) after a fleet bundle is active
        self.key = bundle.config_key(device_key)
        self.device_key = device_key
        self.stage = root + STAGE
        self.offer_path = root + OFFER
        self.offer = None  # (kind, version, size, digest) being received
        self.have = 0
        self.applied = 0
        self.refused = 0
        self._buf = bytearray(fleetfmt.KEY_ENTRY)

    def current(self):
        """True when no bundle is half received (STATUS health bit "config current")."""
        return self.offer is None

    def on_offer(self, msg):
        """The reply (kind, version, offset) to a CONFIG_OFFER; raises Refused."""
        kind, version, size = msg["kind"], msg["version"], msg["size"]
        if kind == bundle.KIND_DENY and self.deny is not None:
            lo, hi, have = bundle.HEAD, MAX_SIZE, self.deny.version
        elif kind in FLEET_KINDS:
            lo, hi = fleetfmt.HEAD + fleetfmt.SIG + 1, fleetfmt.HEAD + fleetfmt.MAX_BODY[kind] + fleetfmt.SIG
            have = fleet.version(self.root, kind)
        elif kind == fleetfmt.KIND_TOKEN_KEY:
            lo = hi = TOKEN_KEY_SIZE
            have = self._token_version()
        else:
            raise Refused("config kind %d not supported here" % kind)
        if size < lo or size > hi:
            raise Refused("bundle of %d bytes" % size)
        if not bundle.verify(self.key, kind, version, size, msg["digest"], msg["signature"]):
            raise Refused("bad signature on bundle %d v%d" % (kind, version))
        if version < have and kind != bundle.KIND_DENY:
            self._discard()
            raise Refused("downgrade: %s v%d offered, v%d active" % (fleetfmt.NAMES[kind], version, have))
        if version <= have:
            self._discard()
            return kind, version, size  # already there (a deny list: or newer)
        head = struct.pack("<BII", kind, version, size) + msg["digest"]
        self.offer = (kind, version, size, msg["digest"])
        self.have = 0
        try:
            with open(self.offer_path, "rb") as f:
                staged = f.read()
            if staged == head:
                self.have = min(os.stat(self.stage)[6], size)
        except OSError:
            pass
        if not self.have:
            fsutil.makedirs(self.stage[: self.stage.rfind("/")])
            with open(self.stage, "wb"):
                pass
            with open(self.offer_path, "wb") as f:
                f.write(head)
        if self.have == size:
            return self._activate()
        return kind, version, self.have

    def on_chunk(self, msg):
        """(processed, reply or None).  processed False: leave the frame unacknowledged (ahead of a gap)."""
        o = self.offer
        if o is None or msg["kind"] != o[0] or msg["version"] != o[1]:
            return True, None  # stale
        if msg["offset"] < self.have:
            if self.have == o[2]:  # whole, but its activation ran out of memory: try again
                return True, self._activate()
            return True, None  # already held
        if msg["offset"] > self.have:
            return False, None
        data = msg["data"]
        if self.have + len(data) > o[2]:
            self._discard()
            raise Refused("chunk runs past the bundle's size")
        with open(self.stage, "ab") as f:
            f.write(data)
        self.have += len(data)
        if self.have < o[2]:
            return True, None
        return True, self._activate()

    def _activate(self):
        """Check and apply the whole staged bundle; it is discarded afterwards, applied or refused.

        A full heap is the exception: the staged file stays whole and the frame that completed it
        stays unacknowledged, so the host's retransmission of it (offset < have == size) tries the
        activation again instead of finding no offer and the bundle never being confirmed."""
        gc.collect()  # RSA, SHA-256 and the deny-list merge want the largest free blocks there are
        try:
            result = self._check_and_apply()
        except MemoryError:
            raise
        except BaseException:
            self._discard()
            raise
        self._discard()
        return result

    def _check_and_apply(self):
        o = self.offer
        if o is None:
            raise Refused("no bundle offered")
        kind, version, size, digest = o
        if kind == fleetfmt.KIND_TOKEN_KEY:
            return self._activate_token_key(version, size, digest)
        if kind != bundle.KIND_DENY:
            return self._activate_fleet(kind, version, size, digest)
        return self._activate_deny(kind, version, size, digest)

    def _activate_deny(self, kind, version, size, digest):
        h = hashlib.sha256()
        with open(self.stage, "rb") as f:
            head = f.read(bundle.HEAD)
            h.update(head)
            while True:
                n = f.readinto(self._buf)
                if not n:
                    break
                h.update(memoryview(self._buf)[:n])
        if h.digest() != digest:
            raise Refused("bundle %d v%d does not match its digest" % (kind, version))
        try:
            base, to, n_add, n_remove = bundle.deny_head(head, size)
        except bundle.BundleError as e:
            raise Refused(str(e))
        if to != version:
            raise Refused("bundle says version %d, offer %d" % (to, version))
        if base > self.deny.version:
            return kind, self.deny.version, REBASE
        try:
            self.deny.apply_staged(self.stage, bundle.HEAD, version, n_add, n_remove, bundle.ordered(head))
        except denylist.DenyListError as e:
            raise Refused(str(e))
        self.applied += 1
        print("deny list: version %d, %d cards" % (self.deny.version, self.deny.count))
        return kind, version, size

    def _activate_fleet(self, kind, version, size, digest):
        """Check the staged fleet bundle end to end, then make it the active one of its kind."""
        whole = hashlib.sha256()  # the offer's digest: every byte
        signed = hashlib.sha256()  # the authority's signature: all but the signature
        mv = memoryview(self._buf)
        try:
            with open(self.stage, "rb") as f:
                raw = f.read(fleetfmt.HEAD)
                whole.update(raw)
                signed.update(raw)
                k, key_id, left, to, _ = fleetfmt.head(raw, size)
                while left:
                    n = f.readinto(mv[:min(left, len(mv))])
                    if not n:
                        raise Refused("bundle %d v%d truncated in flash" % (kind, version))
                    whole.update(mv[:n])
                    signed.update(mv[:n])
                    left -= n
                sig = f.read(fleetfmt.SIG)
                whole.update(sig)
                if whole.digest() != digest:
                    raise Refused("bundle %d v%d does not match its digest" % (kind, version))
                if k != kind or to != version:
                    raise Refused("bundle says %d v%d, offer %d v%d" % (k, to, kind, version))
                fleetfmt.check_signature(signed.digest(), sig, key_id, trust.config_keys(self.root))
                have = fleet.version(self.root, kind)
                if version <= have:
                    raise Refused("downgrade: %s v%d offered, v%d active" % (fleetfmt.NAMES[kind], version, have))
                f.seek(fleetfmt.HEAD)
                content = fleet.read_body(f, kind, size - fleetfmt.HEAD - fleetfmt.SIG, self._buf)
        except fleetfmt.FleetError as e:
            raise Refused(str(e))
        if kind == fleetfmt.KIND_PROFILE:
            wrong = fleet.check_group(self.root, content)
            if wrong is not None:
                raise Refused(wrong)
        os.rename(self.stage, fleet.path(self.root, kind))  # atomic: the old bundle or the new one
        self.applied += 1
        print("fleet %s: version %d active" % (fleetfmt.NAMES[kind], version))
        if self.on_activate is not None:
            self.on_activate(kind, content)
        return kind, version, size

    def _token_version(self):
        held = identity.token_key(self.root)
        return 0 if held is None else held[0]

    def _activate_token_key(self, version, size, digest):
        """Open the staged token key under the device key and keep it (protocol/tokenkey.py)."""
        from protocol import tokenkey

        with open(self.stage, "rb") as f:
            data = f.read(size + 1)
        if len(data) != size or hashlib.sha256(data).digest() != digest:
            raise Refused("token key v%d does not match its digest" % version)
        try:
            to, key = tokenkey.open_bundle(self.device_key, data)
        except tokenkey.TokenKeyError as e:
            raise Refused(str(e))
        if to != version:
            raise Refused("token key says version %d, offer %d" % (to, version))
        have = self._token_version()
        if version <= have:
            raise Refused("downgrade: token key v%d offered, v%d held" % (version, have))
        identity.save_token_key(self.root, version, key)
        self.applied += 1
        print("token key: version %d active" % version)
        if self.on_activate is not None:
            self.on_activate(fleetfmt.KIND_TOKEN_KEY, (version, key))
        return fleetfmt.KIND_TOKEN_KEY, version, size

    def _discard(self):
        self.offer = None
        self.have = 0
        for path in (self.offer_path, self.stage):
            try:
                os.remove(path)
            except OSError:
                pass
