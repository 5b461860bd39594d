"""Provisioning on the board: the device key, the fleet token key, the config authority's keys, the
collector's seal key, the ride-code roots, the terminal group and the uplink config, each written atomically.

Run on a board through mpremote: `run` this file, then `exec` one call of write_keys().  A power cut
leaves the old file or the new one, never a part."""

import hashlib
import os

import board
from firmware import identity, keystore

keystore.use(board.secret())  # device and token keys are kept wrapped under the board secret


def _make_parent(path):
    try:
        os.mkdir(path[:path.rfind("/")])
    except OSError:
        pass  # there already


def _replace(path, data, mode):
    with open(path + ".new", mode) as f:
        f.write(data)
    os.rename(path + ".new", path)


def write_keys(key_path, key_hex, config_path=None, config_text=None, token_path=None, token_hex=None,
               seal_path=None, seal_text=None, ride_path=None, ride_text=None, group_path=None, group_text=None,
               uplink_path=None, uplink_text=None):
    """Write the device key (hex) to `key_path` and, if given, the keyring text to `config_path`, the token
    key file (firmware/identity.py TOKEN_KEY_FILE, hex) to `token_path`, the collector's modulus (hex) to
    `seal_path`, the ride-code roots' text to `ride_path`, the terminal group to `group_path` and the uplink
    config (JSON text, firmware/uplink.py) to `uplink_path`; print
    "sha256 <path> <hex>" of each file read back (a wrapped secret opened), so the host checks what it wrote,
    and the terminal id the firmware will announce, as "terminal=<hex>"."""
    try:
        os.mkdir("/flash/keys")
    except OSError:
        pass
    keystore.write("/flash", "keys/device.key", bytes.fromhex(key_hex))
    if config_path is not None:
        _replace(config_path, config_text, "w")
    if token_path is not None and token_hex is not None:
        keystore.write("/flash", "keys/token", bytes.fromhex(token_hex))
    if seal_path is not None:
        _replace(seal_path, seal_text, "w")
    if ride_path is not None:
        _replace(ride_path, ride_text, "w")
    if group_path is not None:
        _make_parent(group_path)
        _replace(group_path, group_text, "w")
    if uplink_path is not None:
        _make_parent(uplink_path)
        _replace(uplink_path, uplink_text, "w")
    token_written = token_path if token_hex is not None else None
    for path in (key_path, config_path, token_written, seal_path, ride_path, group_path, uplink_path):
        if path is not None:
            print("sha256 %s %s" % (path, _read_back(path)))
    print("terminal=" + identity.terminal_id(board).hex())


def _read_back(path):
    """The SHA-256 (hex) of what `path` holds now, a wrapped secret opened first; "-" when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "-"
    name = path[len("/flash/"):]
    if name in keystore.SECRET_FILES:
        data = keystore.unwrap(name, data)
        if data is None:
            return "-"
    return hashlib.sha256(data).digest().hex()


def identify(key_path):
    """Print the terminal id and the SHA-256 of the device key the board holds now ("none" without one),
    so the host can tell this board's re-provisioning from another board taking a registered id."""
    try:
        with open(key_path, "rb") as f:
            key = keystore.unwrap("keys/device.key", f.read())
        held = "none" if key is None else hashlib.sha256(key).digest().hex()
    except OSError:
        held = "none"
    print("terminal=" + identity.terminal_id(board).hex())
    print("key_sha256=" + held)
