"""Secrets at rest: the files in /flash/keys that must stay secret are kept wrapped under the board secret.

The board secret is not in the littlefs partition (board.secret(): on the virtual board a per-image secret
beside the image, on a chip whatever the board module can derive from hardware; None where there is
none), so a copy of the filesystem alone reveals no key.  A wrapped file is

    "ZKW1" | nonce (12) | AES-CTR ciphertext | HMAC tag (16)        protocol/crypto.py seal()

under a key derived from the board secret and the file's name (the name is also bound into the tag, so
one wrapped file cannot stand in for another).  A file in clear (a board without a secret, or one
written before) is read as it is and wrapped at the next boot (seal_clear()).
"""

import os

from firmware import fsutil
from protocol import crypto

MAGIC = b"ZKW1"
SECRET_FILES = ("keys/salt", "keys/device.key", "keys/token")

_secret = None


def use(secret):
    """The board secret (bytes) for this boot, or None: secrets are then kept in clear."""
    global _secret
    _secret = bytes(secret) if secret else None


def _key(name):
    return crypto.derive(_secret, b"keystore " + name.encode())


def unwrap(name, raw):
    """The secret in file content `raw` of file `name` (e.g. "keys/salt"); None when it cannot be opened."""
    raw = bytes(raw)
    if raw[:4] != MAGIC:
        return raw
    if _secret is None:
        return None
    try:
        return crypto.unseal(_key(name), raw[4:], name.encode())
    except crypto.CryptoError:
        return None


def wrap(name, data):
    if _secret is None:
        return bytes(data)
    return MAGIC + crypto.seal(_key(name), os.urandom(crypto.NONCE_SIZE), data, name.encode())


def read(root, name):
    """The secret in root/name, None when absent or unreadable."""
    try:
        with open(root + "/" + name, "rb") as f:
            return unwrap(name, f.read())
    except OSError:
        return None


def write(root, name, data):
    """Keep a secret in root/name; a power cut leaves the old file or the new one."""
    fsutil.makedirs(root + "/keys")
    fsutil.write_atomic(root + "/" + name, wrap(name, data))


def seal_clear(root):
    """Wrap the secret files still in clear (a board provisioned before, a factory key); their number."""
    if _secret is None:
        return 0
    n = 0
    for name in SECRET_FILES:
        try:
            with open(root + "/" + name, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw[:4] != MAGIC:
            write(root, name, raw)
            n += 1
    return n
