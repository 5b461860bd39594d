"""Who this terminal is: its 8-byte terminal id, its secrets, and the fleet token key it holds.

The salt (journal MAC) and data key are created once from the board's random source and kept in
/flash/keys, wrapped under the board secret like the token key (firmware/keystore.py).  The fleet token
key (protocol/tokens.py) is not made here: provisioning installs it and config kind 4 rotates it; without
one the terminal declines payment taps (record.REASON_NO_TOKEN_KEY).
"""

import os
import struct

from firmware import keystore

SALT_FILE = "keys/salt"
TOKEN_KEY_FILE = "keys/token"  # version u32 LE | key (32)


def terminal_id(board):
    uid = board.unique_id()
    return (bytes(uid) + bytes(8))[:8]


def salt(root):
    return _secret(root, SALT_FILE, 16)


def _secret(root, name, size):
    """A random secret kept in /flash/keys (wrapped, firmware/keystore.py), created at first boot."""
    value = keystore.read(root, name)
    if value is not None and len(value) == size:
        return value
    value = os.urandom(size)
    keystore.write(root, name, value)
    return value


def token_key(root):
    """(version, key) of the fleet token key this terminal holds, or None."""
    data = keystore.read(root, TOKEN_KEY_FILE)
    if data is None or len(data) != 36:
        return None
    return struct.unpack("<I", data[:4])[0], data[4:]


def save_token_key(root, version, key):
    """Keep a delivered token key; a power cut leaves the old one or the new one."""
    keystore.write(root, TOKEN_KEY_FILE, struct.pack("<I", version) + bytes(key))
