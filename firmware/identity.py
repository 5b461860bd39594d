"""Who this terminal is: its 8-byte terminal id and the secret salt its credential tokens use.

The salt is created once from the board's random source and kept in /flash/keys; it never leaves the
device, so a token cannot be turned back into a card number by anyone holding the uploaded records.
"""

import hashlib
import os

from firmware import fsutil

SALT_FILE = "keys/salt"


def terminal_id(board):
    uid = board.unique_id()
    return (bytes(uid) + bytes(8))[:8]


def salt(root):
    return _secret(root, SALT_FILE, 16)


def _secret(root, name, size):
    """A random secret kept in /flash/keys, created at first boot (a provisioned one is kept)."""
    path = root + "/" + name
    try:
        with open(path, "rb") as f:
            value = f.read()
        if len(value) == size:
            return value
    except OSError:
        pass
    fsutil.makedirs(root + "/keys")
    value = os.urandom(size)
    fsutil.write_atomic(path, value)
    return value


def credential_token(salt_value, account):
    """16 bytes of SHA-256(salt || account digits): the only form in which a card is stored."""
    h = hashlib.sha256(salt_value)
    h.update(account.encode() if isinstance(account, str) else account)
    return h.digest()[:16]

