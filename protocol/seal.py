"""Card data sealed to the collector (SPEC.md "Sealed card data"): only the host holding the private key opens it.

A record is at most 255 bytes, too small for a 256-byte RSA-2048 ciphertext, so the terminal seals under
an epoch key: 32 random bytes kept in RAM only, wrapped once with RSA-OAEP (SHA-256, MGF1-SHA-256, empty
label) to the collector's public key and journalled in KIND_SEAL_KEY records before the first tap
sealed with it.  Each sealed extension names its key id (the sequence number of the epoch's first key
record, unique per terminal) and is crypto.seal under the epoch key with the record's token as associated
data.  Sans-IO and pure Python: the same code runs in the terminal and in the host's tests.
"""

import hashlib
import struct

from protocol import crypto

KEY_SIZE = 32  # bytes of an epoch key
WRAPPED_SIZE = 256  # RSA-2048 ciphertext
PARTS = 2  # key records per epoch key
CHUNK = WRAPPED_SIZE // PARTS
FINGERPRINT_SIZE = 8
KEY_ID_SIZE = 4
PART_HEAD = "<IBB8s"  # key id, part index, part count, host key fingerprint
PART_HEAD_SIZE = 14
SEALED_MIN = KEY_ID_SIZE + crypto.NONCE_SIZE + crypto.TAG_SIZE
_HASH = 32


class SealError(ValueError):
    pass


def fingerprint(n):
    """Which host key an epoch key was wrapped to: SHA-256 of the 256-byte modulus, first 8 bytes."""
    return hashlib.sha256(n.to_bytes(WRAPPED_SIZE, "big")).digest()[:FINGERPRINT_SIZE]


def _mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(bytes(seed) + struct.pack(">I", counter)).digest()
        counter += 1
    return out[:length]


def _xor(a, b):
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def oaep_encrypt(message, n, seed, e=65537):
    """RSAES-OAEP-ENCRYPT (RFC 8017 section 7.1.1), SHA-256 and MGF1-SHA-256, empty label, 2048-bit `n`;
    `seed` is 32 random bytes (fixed only in golden vectors)."""
    k = WRAPPED_SIZE
    if len(message) > k - 2 * _HASH - 2 or len(seed) != _HASH:
        raise SealError("OAEP message too long or bad seed")
    db = hashlib.sha256(b"").digest() + bytes(k - len(message) - 2 * _HASH - 2) + b"\x01" + bytes(message)
    masked_db = _xor(db, _mgf1(seed, k - _HASH - 1))
    masked_seed = _xor(bytes(seed), _mgf1(masked_db, _HASH))
    m = int.from_bytes(masked_seed + masked_db, "big")  # the leading 0x00 byte is implicit
    return pow(m, e, n).to_bytes(k, "big")


def key_parts(key_id, fp, wrapped):
    """The EXT_SEAL_KEY values of one wrapped epoch key, one per KIND_SEAL_KEY record."""
    return [struct.pack(PART_HEAD, key_id, i, PARTS, fp) + wrapped[i * CHUNK:(i + 1) * CHUNK]
            for i in range(PARTS)]


def parse_key_part(value):
    """(key id, part index, part count, fingerprint, chunk) of an EXT_SEAL_KEY value; SealError if malformed."""
    if len(value) != PART_HEAD_SIZE + CHUNK:
        raise SealError("key part of %d bytes" % len(value))
    key_id, index, count, fp = struct.unpack(PART_HEAD, bytes(value[:PART_HEAD_SIZE]))
    if count != PARTS or index >= count:
        raise SealError("key part %d of %d" % (index, count))
    return key_id, index, count, fp, bytes(value[PART_HEAD_SIZE:])


def join_parts(values):
    """(key id, fingerprint, wrapped key) of an epoch's EXT_SEAL_KEY values, in any order."""
    chunks = {}
    head = None
    for value in values:
        key_id, index, _, fp, chunk = parse_key_part(value)
        if head is None:
            head = (key_id, fp)
        elif head != (key_id, fp):
            raise SealError("key parts of different keys")
        chunks[index] = chunk
    if head is None or len(chunks) != PARTS:
        raise SealError("key parts missing")
    return head[0], head[1], b"".join(chunks[i] for i in range(PARTS))


def nonce(count):
    """The nonce of the `count`-th record sealed under an epoch key: unique per key, as CTR needs."""
    return bytes(8) + struct.pack(">I", count)


def seal_data(key_id, key, count, plaintext, token):
    """The EXT_EMV_SEALED value: key id u32 LE, then crypto.seal(key, nonce(count), plaintext, token)."""
    return struct.pack("<I", key_id) + crypto.seal(key, nonce(count), plaintext, token)


def key_id_of(value):
    """The key id an EXT_EMV_SEALED value names; SealError if it is too short to be one."""
    if len(value) < SEALED_MIN:
        raise SealError("sealed data of %d bytes" % len(value))
    return struct.unpack("<I", bytes(value[:KEY_ID_SIZE]))[0]


def open_data(key, value, token):
    """The plaintext of an EXT_EMV_SEALED value under its epoch key; SealError if anything was altered."""
    key_id_of(value)
    try:
        return crypto.unseal(key, bytes(value[KEY_ID_SIZE:]), token)
    except crypto.CryptoError as e:
        raise SealError(str(e)) from None
