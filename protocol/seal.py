"""Card data sealed to the collector (SPEC.md "Sealed card data"), the terminal's side: only the host holding
the private key opens it (protocol/seal_open.py).

A record is at most 255 bytes, too small for a 256-byte RSA-2048 ciphertext, so the terminal seals under
an epoch key: 32 random bytes kept in RAM only, wrapped once with RSA-OAEP (protocol/oaep.py) to the
collector's public key and journalled in KIND_SEAL_KEY records before the first tap
sealed with it.  Each sealed extension names its key id (the sequence number of the epoch's first key
record, unique per terminal) and is crypto.seal under the epoch key with the record's token as associated
data.  Kept small: the terminal loads it at boot.
"""

import hashlib
import struct

from protocol import crypto

KEY_SIZE = 32  # bytes of an epoch key
WRAPPED_SIZE = 256  # RSA-2048 ciphertext
PARTS = 2  # key records per epoch key
CHUNK = WRAPPED_SIZE // PARTS
PART_HEAD = "<IBB8s"  # key id, part index, part count, host key fingerprint (8)


def fingerprint(n):
    """Which host key an epoch key was wrapped to: SHA-256 of the 256-byte modulus, first 8 bytes."""
    return hashlib.sha256(n.to_bytes(WRAPPED_SIZE, "big")).digest()[:8]


def key_parts(key_id, fp, wrapped):
    """The EXT_SEAL_KEY values of one wrapped epoch key, one per KIND_SEAL_KEY record."""
    return [struct.pack(PART_HEAD, key_id, i, PARTS, fp) + wrapped[i * CHUNK:(i + 1) * CHUNK] for i in range(PARTS)]


def seal_data(key_id, key, count, plaintext, token):
    """The EXT_EMV_SEALED value: key id u32 LE, then crypto.seal(key, nonce, plaintext, token) where the nonce
    of the `count`-th record sealed under an epoch key is 8 zero bytes and count u32 BE (unique per key)."""
    return struct.pack("<I", key_id) + crypto.seal(key, struct.pack(">8xI", count), plaintext, token)
