"""The few cryptographic building blocks the terminal needs, on CPython and MicroPython alike.

- HMAC-SHA256 (RFC 2104) over hashlib.sha256: link authentication, frame MACs, key derivation.
- AES in CTR mode built on the ECB primitive, which every port's cryptolib has (the unix and rp2
  ports are built without cryptolib's own CTR mode); on CPython the `cryptography` package provides
  the same ECB primitive.
- seal/unseal: encrypt-then-MAC for data at rest or in transit (AES-CTR, then HMAC-SHA256 truncated).
"""

import hashlib

try:
    import cryptolib

    def _ecb(key):  # pyright: ignore[reportRedeclaration]
        return cryptolib.aes(key, 1).encrypt

except ImportError:  # CPython: host tools and tests
    from cryptography.hazmat.primitives.ciphers import (  # pyright: ignore[reportMissingImports]
        Cipher,
        algorithms,
        modes,
    )

    def _ecb(key):
        enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
        return enc.update


BLOCK = 16
TAG_SIZE = 16
NONCE_SIZE = 12


class CryptoError(ValueError):
    pass


def hmac_sha256(key, msg):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Compare MACs without an early exit on the first differing byte."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def derive(key, label, length=32):
    """A sub-key for one purpose: HMAC(key, label || counter) blocks (HKDF-expand style)."""
    out = b""
    counter = 1
    while len(out) < length:
        out += hmac_sha256(key, bytes(label) + bytes([counter]))
        counter += 1
    return out[:length]


def aes_ctr(key, nonce, data):
    """XOR `data` with the AES-CTR keystream for a 12-byte nonce (32-bit block counter from 0)."""
    if len(nonce) != NONCE_SIZE:
        raise CryptoError("CTR nonce must be 12 bytes")
    encrypt = _ecb(key)
    out = bytearray(data)
    counter = bytearray(nonce + b"\x00\x00\x00\x00")
    n = len(out)
    block = 0
    for start in range(0, n, BLOCK):
        counter[12] = (block >> 24) & 0xFF
        counter[13] = (block >> 16) & 0xFF
        counter[14] = (block >> 8) & 0xFF
        counter[15] = block & 0xFF
        stream = encrypt(bytes(counter))
        for i in range(start, min(start + BLOCK, n)):
            out[i] ^= stream[i - start]
        block += 1
    return bytes(out)


def seal(key, nonce, plaintext, associated=b""):
    """nonce || AES-CTR(enc key) || HMAC(mac key, associated || nonce || ciphertext)[:16]."""
    enc_key = derive(key, b"seal-enc", 16)
    mac_key = derive(key, b"seal-mac", 32)
    body = aes_ctr(enc_key, nonce, plaintext)
    tag = hmac_sha256(mac_key, bytes(associated) + bytes(nonce) + body)[:TAG_SIZE]
    return bytes(nonce) + body + tag


def unseal(key, sealed, associated=b""):
    """The plaintext of `seal`; raises CryptoError if anything was altered."""
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise CryptoError("sealed data too short")
    nonce = sealed[:NONCE_SIZE]
    body = sealed[NONCE_SIZE:-TAG_SIZE]
    mac_key = derive(key, b"seal-mac", 32)
    if not equal(hmac_sha256(mac_key, bytes(associated) + bytes(nonce) + bytes(body))[:TAG_SIZE],
                 sealed[-TAG_SIZE:]):
        raise CryptoError("MAC check failed")
    return aes_ctr(derive(key, b"seal-enc", 16), nonce, body)
