"""RSAES-OAEP encryption (RFC 8017 section 7.1.1) with SHA-256, MGF1-SHA-256 and an empty label: public keys only.

The terminal wraps each epoch key of its sealed card data with it (protocol/seal.py, firmware/sealing.py).
It runs once per epoch, so the terminal loads it for the wrap and drops it again.
"""

import hashlib
import struct

SIZE = 256  # bytes of a 2048-bit modulus and of a ciphertext


def _mask(data, seed, length):
    """`data` XOR MGF1-SHA-256(seed, length) (RFC 8017 B.2.1)."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(bytes(seed) + struct.pack(">I", counter)).digest()
        counter += 1
    return (int.from_bytes(data, "big") ^ int.from_bytes(out[:length], "big")).to_bytes(length, "big")


def encrypt(message, n, seed, e=65537):
    """The ciphertext of `message` (at most 190 bytes) under the 2048-bit public key (n, e); `seed` is 32
    random bytes (fixed only in golden vectors)."""
    if len(message) > SIZE - 66 or len(seed) != 32:
        raise ValueError("OAEP message too long or bad seed")
    db = hashlib.sha256(b"").digest() + bytes(SIZE - len(message) - 66) + b"\x01" + bytes(message)
    masked_db = _mask(db, seed, SIZE - 33)
    masked_seed = _mask(bytes(seed), masked_db, 32)
    m = int.from_bytes(masked_seed + masked_db, "big")  # the leading 0x00 byte is implicit
    return pow(m, e, n).to_bytes(SIZE, "big")
