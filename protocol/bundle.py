"""Config bundles the collector sends with CONFIG_OFFER / CONFIG_CHUNK (protocol/SPEC.md, "Config bundles").

Kind 1 is a deny-list delta: the tokens the acquirer declined (and re-enabled) since the terminal's version.

    "ZDD2" | base u32 | version u32 | n_add u32 | n_remove u32 | n_add x token (16) | n_remove x token (16)

The additions and the removals are each in ascending byte order, so a terminal merges a delta of any
size into its list by streaming it from flash (firmware/denylist.py).  The older "ZDD1" has the same
layout, any order and at most 256 tokens; terminals still take it.

A terminal at deny-list version v applies it when base <= v < version (tokens already present are
merged away).  An offer is signed end to end with a key derived from the device key, so a bundle
staged in flash is checked again before it is activated, whatever session brought its chunks.
"""

import struct

from protocol import crypto

KIND_DENY = 1
MAGIC = b"ZDD2"
OLD_MAGIC = b"ZDD1"
HEAD = 20
TOKEN = 16
OLD_MAX_TOKENS = 256  # "ZDD1": the terminal sorts its tokens in RAM
MAX_TOKENS = 65536  # per bundle: what a terminal stages in flash at once (1 MB); a longer delta is several
BUNDLE_TOKENS = 16384  # what the collector puts in one bundle (256 KB staged)
SIG_SIZE = 32
REBASE = 0xFFFFFFFF  # CONFIG_CHUNK offset: "I hold the version in this chunk, send a delta from there"


class BundleError(ValueError):
    pass


def deny_delta(base, version, add, remove=()):
    """A "ZDD2" bundle: each part sorted here, a token given twice sent once."""
    add = sorted(set(bytes(t) for t in add))
    remove = sorted(set(bytes(t) for t in remove))
    if len(add) + len(remove) > MAX_TOKENS:
        raise BundleError("a deny-list bundle carries at most %d tokens" % MAX_TOKENS)
    for t in add + remove:
        if len(t) != TOKEN:
            raise BundleError("a deny-list token must be 16 bytes")
    if not base < version:
        raise BundleError("a delta must move to a newer version")
    return MAGIC + struct.pack("<IIII", base, version, len(add), len(remove)) + b"".join(add) + b"".join(remove)


def deny_head(head, size):
    """(base, version, n_add, n_remove) of a bundle of `size` bytes starting with `head`; BundleError."""
    if len(head) < HEAD or bytes(head[:4]) not in (MAGIC, OLD_MAGIC):
        raise BundleError("not a deny-list bundle")
    base, version, n_add, n_remove = struct.unpack_from("<IIII", head, 4)
    if n_add + n_remove > (MAX_TOKENS if ordered(head) else OLD_MAX_TOKENS):
        raise BundleError("deny-list bundle with %d tokens" % (n_add + n_remove))
    want = HEAD + TOKEN * (n_add + n_remove)
    if size != want:
        raise BundleError("deny-list bundle is %d bytes, its header says %d" % (size, want))
    if base >= version:
        raise BundleError("deny-list bundle does not move forward")
    return base, version, n_add, n_remove


def ordered(head):
    """True when the bundle's additions and removals are each sorted ("ZDD2")."""
    return bytes(head[:4]) == MAGIC


def config_key(device_key):
    return crypto.derive(device_key, b"zf1 config", 32)


def signature(key, kind, version, size, digest):
    """HMAC-SHA256(config key, kind u8 || version u32 || size u32 || digest)."""
    return crypto.hmac_sha256(key, struct.pack("<BII", kind, version, size) + bytes(digest))


def verify(key, kind, version, size, digest, sig):
    return len(sig) == SIG_SIZE and crypto.equal(sig, signature(key, kind, version, size, digest))
