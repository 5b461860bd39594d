"""RSA-2048 PKCS#1 v1.5 SHA-256 signature verification with pow(): public keys only.

Shared by signed tickets (protocol/ticket.py) and fleet config bundles (protocol/fleet.py).  The
terminal holds only moduli (exponent 65537); MicroPython's long integers do the modular power in
about a millisecond.  Verification compares the whole EMSA-PKCS1-v1_5 block (RFC 8017 section 9.2)
rather than parsing it, so there is no padding parser to get wrong.
"""

import hashlib

E = 65537
SIZE = 256  # bytes of a 2048-bit modulus and of a signature

# DigestInfo of SHA-256 (RFC 8017 section 9.2, note 1): the bytes before the hash in a PKCS#1 v1.5 block
_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def pkcs1_block(digest, size=SIZE):
    """EMSA-PKCS1-v1_5 encoding of a SHA-256 `digest` into `size` bytes."""
    pad = size - 3 - len(_DIGEST_INFO) - len(digest)
    return b"\x00\x01" + b"\xff" * pad + b"\x00" + _DIGEST_INFO + bytes(digest)


def verify_digest(digest, signature, n, e=E):
    """True when `signature` is a valid signature of the SHA-256 `digest` under (n, e)."""
    if len(signature) != SIZE or len(digest) != 32:
        return False
    s = int.from_bytes(bytes(signature), "big")
    if s >= n:
        return False
    return pow(s, e, n).to_bytes(SIZE, "big") == pkcs1_block(digest)


def verify(message, signature, n, e=E):
    """True when `signature` is a valid RSA PKCS#1 v1.5 SHA-256 signature of `message` under (n, e)."""
    return verify_digest(hashlib.sha256(bytes(message)).digest(), signature, n, e)


def modulus(raw):
    """The modulus of 256 big-endian bytes, or None unless it is exactly 2048 bits and odd."""
    if len(raw) != SIZE or not raw[0] & 0x80 or not raw[-1] & 1:
        return None
    return int.from_bytes(bytes(raw), "big")
