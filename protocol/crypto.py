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
        return cryptolib.aes(key, 1).encrypt  # encrypt(data) -> bytes, or encrypt(data, out) in place

except ImportError:  # CPython: host tools and tests
    import threading  # pyright: ignore[reportMissingImports]

    from cryptography.hazmat.primitives.ciphers import (  # pyright: ignore[reportMissingImports]
        Cipher,
        algorithms,
        modes,
    )

    def _ecb(key):
        enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
        lock = threading.Lock()  # the collector's serial threads and event loop share cached ciphers

        def encrypt(data, out=None):
            with lock:
                result = enc.update(data)
                if out is not None:
                    out[: len(data)] = result
                return result

        return encrypt


BLOCK = 16
TAG_SIZE = 16
NONCE_SIZE = 12


class CryptoError(ValueError):
    pass


_PADS = {}  # key -> (inner pad, outer pad): a session MACs every frame with the same few keys
_CIPHERS = {}  # key -> AES-ECB encrypt function
_CACHE_KEYS = 8  # bounded: a few hundred bytes on a device


def _cached(cache, key, make):
    if type(key) is not bytes:  # a memoryview or bytearray: hashable copy (session keys are bytes already)
        key = bytes(key)
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_KEYS:
            cache.clear()
        value = cache[key] = make(key)
    return value


def _pads(key):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256(key, msg):
    inner_pad, outer_pad = _cached(_PADS, key, _pads)
    inner = hashlib.sha256(inner_pad)
    inner.update(msg)
    outer = hashlib.sha256(outer_pad)
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


def _counter_blocks(buf, nonce):
    """Fill `buf` (whole blocks) with the CTR counter blocks: nonce || block number u32 big-endian from 0."""
    for block in range(len(buf) // BLOCK):
        at = block * BLOCK
        buf[at:at + NONCE_SIZE] = nonce
        buf[at + 12] = (block >> 24) & 0xFF
        buf[at + 13] = (block >> 16) & 0xFF
        buf[at + 14] = (block >> 8) & 0xFF
        buf[at + 15] = block & 0xFF


def aes_ctr(key, nonce, data):
    """XOR `data` with the AES-CTR keystream for a 12-byte nonce (32-bit block counter from 0).

    All counter blocks go through ECB in one call and the XOR is one big-integer operation, so the
    work per byte is C on both runtimes."""
    if len(nonce) != NONCE_SIZE:
        raise CryptoError("CTR nonce must be 12 bytes")
    n = len(data)
    if not n:
        return b""
    counters = bytearray((n + BLOCK - 1) // BLOCK * BLOCK)
    _counter_blocks(counters, nonce)
    stream = _cached(_CIPHERS, key, _ecb)(counters)
    mixed = int.from_bytes(bytes(data), "big") ^ int.from_bytes(stream[:n], "big")
    return mixed.to_bytes(n, "big")


def aes_ctr_into(key, nonce, data, out, scratch):
    """aes_ctr(key, nonce, data) written into out[:len(data)], with the keystream made in `scratch` (a
    bytearray of at least len(data) rounded up to 16 bytes): nothing allocated per call, so a session
    seals and opens every frame without garbage.  `out` may be `data` itself."""
    if len(nonce) != NONCE_SIZE:
        raise CryptoError("CTR nonce must be 12 bytes")
    n = len(data)
    ks = memoryview(scratch)[: (n + BLOCK - 1) // BLOCK * BLOCK]
    _counter_blocks(ks, nonce)
    _cached(_CIPHERS, key, _ecb)(ks, ks)
    for i in range(n):
        out[i] = data[i] ^ ks[i]


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
