"""The fleet token key in transit: config bundle kind 4, sealed to one terminal (protocol/tokens.py).

Made per terminal by the collector (like a deny-list delta) and sealed under a key derived from the
device key, so only that terminal opens it; the CONFIG_OFFER carries the usual per-terminal HMAC too:

    "ZTK1" | version u32 LE | nonce (12) | AES-CTR(key, 32) | tag (16)          68 bytes
    sealed = crypto.seal(derive(K, "zf1 token key", 32), nonce, key, associated = first 8 bytes)

Versions start at 1 and only move up (rotation).  The terminal loads this module only when a bundle
arrives.  Runs unchanged on CPython and MicroPython.
"""

import struct

from protocol import crypto

MAGIC = b"ZTK1"
KEY_SIZE = 32
SIZE = 8 + crypto.NONCE_SIZE + KEY_SIZE + crypto.TAG_SIZE  # 68


class TokenKeyError(ValueError):
    pass


def seal_key(device_key):
    return crypto.derive(device_key, b"zf1 token key", 32)


def make(device_key, version, key, nonce):
    """The kind-4 bundle carrying `key` (version `version`) for the terminal holding `device_key`."""
    if len(key) != KEY_SIZE or not 0 < version <= 0xFFFFFFFF:
        raise TokenKeyError("a token key is 32 bytes with a version from 1")
    head = MAGIC + struct.pack("<I", version)
    return head + crypto.seal(seal_key(device_key), nonce, key, head)


def version_of(data):
    """The key version a bundle claims (not yet authenticated); TokenKeyError if it is no kind-4 bundle."""
    if len(data) != SIZE or bytes(data[:4]) != MAGIC:
        raise TokenKeyError("not a token-key bundle")
    version = struct.unpack_from("<I", data, 4)[0]
    if not version:
        raise TokenKeyError("token key version 0")
    return version


def open_bundle(device_key, data):
    """(version, key) of a kind-4 bundle; TokenKeyError if it is malformed or was not sealed for this device."""
    version = version_of(data)
    try:
        key = crypto.unseal(seal_key(device_key), bytes(data[8:]), bytes(data[:8]))
    except crypto.CryptoError:
        raise TokenKeyError("token key bundle fails its seal")
    return version, key
