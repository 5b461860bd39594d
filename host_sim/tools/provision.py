"""`python -m host_sim provision --port CONSOLE_PORT --db COLLECTOR_DB`: give a terminal its device key.

Generates a random 32-byte key, writes it to the board's /flash/keys/device.key over the REPL with
mpremote (the same on a USB board and a virtual board's console), reads back the terminal id and
registers (terminal id, key) in the collector's database.  With `--config-keys KEY.pub` it also
writes the config authority's public keys (`bundle keygen`) to /flash/keys/config, the only keys the
terminal accepts fleet bundles (fares, ticket keys) under.  It always writes the collector's seal key
(`--seal-key PUBLIC.pem`, default the development key, host_sim/backend/sealing.py) to /flash/keys/seal.pub:
the terminal seals card data to it, and declines card payments without it.  Then it soft-resets the board (Ctrl-D at
the REPL), so the firmware starts again and authenticates with the new key.  The key is never printed.
"""

import json
import os
import subprocess
import sys
import time

import serial

from host_sim.backend.store import Store
from host_sim.tools import flash

KEY_PATH = "/flash/keys/device.key"
CONFIG_KEYS_PATH = "/flash/keys/config"
SEAL_KEY_PATH = "/flash/keys/seal.pub"


class ProvisionError(Exception):
    pass


def read_config_keys(path):
    """The keyring text of a KEY.pub file, checked line by line as the terminal will read it."""
    from protocol import fleet, ticket

    with open(path) as f:
        text = f.read()
    ring = ticket.Keyring()
    for line in text.splitlines():
        try:
            ring.load_line(line)
        except ticket.TicketError as e:
            raise ProvisionError("%s: %s" % (path, e)) from e
    if not any(issuer == fleet.AUTHORITY for issuer, _ in ring.keys):
        raise ProvisionError("%s holds no config key (key %d <key id> <modulus>)" % (path, fleet.AUTHORITY))
    return text


def seal_key_text(path=None):
    """/flash/keys/seal.pub of a PEM key (public or private; default the development key): 512 hex digits."""
    from host_sim.backend import sealing

    return "%0512x\n" % sealing.public_modulus(path)


def write_key(port, key, timeout=60, config_keys=None, seal_key=None):
    """Write `key`, the config keys' text (if given) and the seal key's text (default the development key)
    to the board on `port`; returns its terminal id."""
    config = (None, None) if config_keys is None else (CONFIG_KEYS_PATH, config_keys)
    chain = flash.board_call("provision_keys", "write_keys", KEY_PATH, key.hex(), *config, SEAL_KEY_PATH,
                             seal_key_text(seal_key))
    proc = subprocess.run([flash.mpremote_exe(), "connect", port] + chain, capture_output=True, text=True,
                          timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("terminal="):
            return line.split("=", 1)[1].strip()
    raise ProvisionError("mpremote failed (%d): %s%s" % (proc.returncode, proc.stdout[-500:], proc.stderr[-500:]))


def soft_reset(port):
    """Ctrl-D at the friendly REPL mpremote left: the board reboots into its firmware."""
    with serial.serial_for_url(port, timeout=1) as con:
        con.write(b"\r\x04")
        con.flush()
        time.sleep(0.1)


def provision(port, db, reset=True, config_keys=None, seal_key=None):
    """`config_keys`: the path of a KEY.pub file (bundle keygen) for /flash/keys/config, or None.
    `seal_key`: the collector's public (or private) PEM key for /flash/keys/seal.pub; None: the development key."""
    key = os.urandom(32)
    terminal = write_key(port, key, config_keys=None if config_keys is None else read_config_keys(config_keys),
                         seal_key=seal_key)
    store = Store(db)
    try:
        store.register(terminal, key)
    finally:
        store.close()
    if reset:
        soft_reset(port)
    return terminal


def main(args):
    try:
        terminal = provision(args.port, args.db, reset=not args.no_reset, config_keys=args.config_keys,
                             seal_key=args.seal_key)
    except (ProvisionError, subprocess.TimeoutExpired, serial.SerialException, OSError, ValueError) as e:
        print("provision failed: %s" % e, file=sys.stderr)
        return 1
    out = {"terminal": terminal, "db": args.db, "key_file": KEY_PATH, "seal_key_file": SEAL_KEY_PATH}
    if args.config_keys:
        out["config_keys_file"] = CONFIG_KEYS_PATH
    print(json.dumps(out))
    return 0


def add_arguments(parser):
    parser.add_argument("--port", required=True, help="the board's REPL port (USB serial or a vboard console)")
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--config-keys", metavar="KEY.pub",
                        help="the config authority's public keys (bundle keygen) for /flash/keys/config")
    parser.add_argument("--seal-key", metavar="PUBLIC.pem",
                        help="the collector's seal key (`seal keygen`) for /flash/keys/seal.pub (default: the "
                             "development key)")
    parser.add_argument("--no-reset", action="store_true", help="leave the board at the REPL afterwards")
