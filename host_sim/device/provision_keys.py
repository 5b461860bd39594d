"""Provisioning on the board: the device key, the config authority's keys and the collector's seal key,
each written atomically.

Run on a board through mpremote: `run` this file, then `exec` one call of write_keys().  A power cut
leaves the old file or the new one, never a part."""

import os

import board
from firmware import identity


def _replace(path, data, mode):
    with open(path + ".new", mode) as f:
        f.write(data)
    os.rename(path + ".new", path)


def write_keys(key_path, key_hex, config_path=None, config_text=None, seal_path=None, seal_text=None):
    """Write the device key (hex) to `key_path` and, if given, the keyring text to `config_path` and the
    collector's modulus (hex) to `seal_path`; print the terminal id the firmware will announce, as
    "terminal=<hex>"."""
    try:
        os.mkdir("/flash/keys")
    except OSError:
        pass
    _replace(key_path, bytes.fromhex(key_hex), "wb")
    if config_path is not None:
        _replace(config_path, config_text, "w")
    if seal_path is not None:
        _replace(seal_path, seal_text, "w")
    print("terminal=" + identity.terminal_id(board).hex())
