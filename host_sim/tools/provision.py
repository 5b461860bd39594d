"""`python -m host_sim provision --port CONSOLE_PORT --db COLLECTOR_DB`: give a terminal its device key.

Generates a random 32-byte key, writes it to the board's /flash/keys/device.key over the REPL with
mpremote (the same on a USB board and a virtual board's console), reads back the terminal id and
registers (terminal id, key) in the collector's database.  With `--config-keys KEY.pub` it also
writes the config authority's public keys (`bundle keygen`) to /flash/keys/config, the only keys the
terminal accepts fleet bundles (fares, ticket keys) under.  It always writes the collector's seal key
(`--seal-key PUBLIC.pem`, default the development key, host_sim/backend/sealing.py) to /flash/keys/seal.pub:
the terminal seals card data to it, and declines card payments without it.  The fleet token key
(protocol/tokens.py; the collector's current one, created at the first provisioning) goes to
/flash/keys/token, and the collector notes that the terminal holds that version.  With `--ride-roots FILE`
it writes the ride-code root keys (`qr ride-roots`) to /flash/keys/ride-roots.  With `--group NAME` it
writes the terminal group (a route, a school, a scenic area) to /flash/config/group and registers it
with the collector, which then offers the terminal the newest profile bundle of that group.  With `--uplink FILE.json`
it writes the uplink config (a cellular modem, or the serial line) to /flash/config/uplink.json, checked on the host
first as the firmware reads it, only stricter.  Then it soft-resets the
board (Ctrl-D at the REPL), so the firmware starts again and authenticates with the new key.  Keys are never
printed.  Every file written is read back on the board (a wrapped key opened with the board secret) and its
SHA-256 compared with what was sent, before the collector registers the key: the JSON's "verified" lists them.
"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import time

import serial

from host_sim import arguments
from host_sim.backend.store import Store
from host_sim.tools import flash
from protocol import fleet, uplink_config

KEY_PATH = "/flash/keys/device.key"
CONFIG_KEYS_PATH = "/flash/keys/config"
TOKEN_KEY_PATH = "/flash/keys/token"
SEAL_KEY_PATH = "/flash/keys/seal.pub"
RIDE_ROOTS_PATH = "/flash/keys/ride-roots"
GROUP_PATH = "/flash/config/group"
UPLINK_PATH = "/flash/config/uplink.json"


class ProvisionError(Exception):
    pass


def read_config_keys(path):
    """The keyring text of a KEY.pub file, checked line by line as the terminal will read it."""
    from protocol import ticket

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


def read_ride_roots(path):
    """The ride-code roots text of FILE (`root <id> sm2|p256 <X||Y hex>` lines, `qr ride-roots`), checked as
    the terminal reads it (protocol/ridecode.py)."""
    from protocol import ridecode

    with open(path) as f:
        text = f.read()
    roots = 0
    for n, line in enumerate(text.splitlines(), 1):
        try:
            roots += ridecode.parse_root_line(line) is not None
        except ridecode.RideCodeError as e:
            raise ProvisionError("%s line %d: %s" % (path, n, e)) from e
    if not roots:
        raise ProvisionError("%s holds no ride-code root (root <id> sm2|p256 <128 hex digits>)" % path)
    return text


def _unique_keys(pairs):
    cfg = dict(pairs)
    if len(cfg) != len(pairs):
        twice = [k for k, _ in pairs if [k2 for k2, _ in pairs].count(k) > 1][0]
        raise ValueError("key %s appears twice" % json.dumps(twice)[:40])
    return cfg


def read_uplink(path):
    """The text for /flash/config/uplink.json of FILE.json, checked (protocol/uplink_config.py problem) before
    the board is touched; written as parsed, so the board holds exactly what was checked."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f, object_pairs_hook=_unique_keys)
    except OSError as e:
        raise ProvisionError("cannot read %s: %s" % (path, e.strerror)) from None
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ProvisionError("%s is not valid JSON: %s" % (path, e)) from None
    problem = uplink_config.problem(cfg)
    if problem:
        raise ProvisionError("%s: %s" % (path, problem))
    return json.dumps(cfg) + "\n"


def seal_key_text(path=None):
    """/flash/keys/seal.pub of a PEM key (public or private; default the development key): 512 hex digits."""
    from host_sim.backend import sealing

    return "%0512x\n" % sealing.public_modulus(path)


def _board_lines(port, chain, timeout):
    """{name: value} of the "name=value" lines a device program printed through mpremote, and the
    "sha256 <path> <hex>" lines as {"sha256": {path: hex}}."""
    proc = subprocess.run([flash.mpremote_exe(), "connect", port] + chain, capture_output=True, text=True,
                          timeout=timeout)
    found = dict(line.strip().split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if "terminal" not in found:
        raise ProvisionError("mpremote failed (%d): %s%s" % (proc.returncode, proc.stdout[-500:],
                                                              proc.stderr[-500:]))
    found["sha256"] = dict(line.split()[1:] for line in proc.stdout.splitlines()
                           if line.startswith("sha256 ") and len(line.split()) == 3)
    return found


def check_read_back(wrote, hashes):
    """`wrote`: {path: bytes written}; `hashes`: {path: SHA-256 hex read back on the board}.  A file the
    board does not hold as written raises ProvisionError naming it; returns the paths verified."""
    wrong = [path for path, data in wrote.items() if hashes.get(path) != hashlib.sha256(data).hexdigest()]
    if wrong:
        raise ProvisionError("read back from the board, %s %s not what was written (SHA-256); the terminal is "
                             "not registered, provision it again" % (", ".join(wrong), "is" if len(wrong) == 1
                                                                     else "are"))
    return sorted(wrote)


def identify(port, timeout=60):
    """(terminal id, SHA-256 hex of the device key the board holds or "none") of the board on `port`."""
    found = _board_lines(port, flash.board_call("provision_keys", "identify", KEY_PATH), timeout)
    return found["terminal"], found.get("key_sha256", "none")


def check_group(name):
    """A terminal group name as protocol/profile.py allows it (1..32 characters, no whitespace)."""
    from protocol import profile

    if not 0 < len(name) <= profile.MAX_GROUP or name.split() != [name]:
        raise ProvisionError("--group wants a name of 1..%d characters without spaces, got %r"
                             % (profile.MAX_GROUP, name))
    return name


def write_key(port, key, timeout=60, config_keys=None, token_key=None, seal_text=None, ride_roots=None,
              group=None, uplink=None):
    """Write `key`, and if given the config keys' text, the token key (version, key), the seal key's text
    (seal_key_text), the ride-code roots' text, the terminal group and the uplink config's text (read_uplink),
    to the board on `port`, and check each
    file read back on the board (SHA-256); returns its terminal id."""
    config = (None, None) if config_keys is None else (CONFIG_KEYS_PATH, config_keys)
    token = (None, None) if token_key is None else (TOKEN_KEY_PATH,
                                                    (struct.pack("<I", token_key[0]) + token_key[1]).hex())
    seal = (None, None) if seal_text is None else (SEAL_KEY_PATH, seal_text)
    ride = (None, None) if ride_roots is None else (RIDE_ROOTS_PATH, ride_roots)
    grp = (None, None) if group is None else (GROUP_PATH, group + "\n")
    link = (None, None) if uplink is None else (UPLINK_PATH, uplink)
    chain = flash.board_call("provision_keys", "write_keys", KEY_PATH, key.hex(),
                             *(config + token + seal + ride + grp + link))
    found = _board_lines(port, chain, timeout)
    wrote = {KEY_PATH: key}
    for path, data in (config, seal, ride, grp, link):
        if path is not None:
            wrote[path] = data.encode()
    if token[0] is not None:
        wrote[TOKEN_KEY_PATH] = bytes.fromhex(token[1])
    check_read_back(wrote, found["sha256"])
    return found["terminal"]


def files_written(config_keys=None, ride_roots=None, group=None, uplink=None):
    """The files `provision` writes (and reads back) for these options."""
    return sorted([KEY_PATH, TOKEN_KEY_PATH, SEAL_KEY_PATH] + ([CONFIG_KEYS_PATH] if config_keys else [])
                  + ([RIDE_ROOTS_PATH] if ride_roots else []) + ([GROUP_PATH] if group else [])
                  + ([UPLINK_PATH] if uplink else []))


def soft_reset(port):
    """Ctrl-D at the friendly REPL mpremote left: the board reboots into its firmware."""
    with serial.serial_for_url(port, timeout=1) as con:
        con.write(b"\r\x04")
        con.flush()
        time.sleep(0.1)


def open_service(port, tech_key):
    """A provisioned terminal's REPL is locked (firmware/main.py): open service mode with the technician
    key first.  Without a key the board is taken to be open (a fresh board)."""
    if tech_key is None:
        return
    from host_sim.tools import console

    try:
        console.open_service(port, tech_key)
    except (console.ConsoleError, ValueError) as e:
        raise ProvisionError("service mode: %s" % e) from None


def provision(port, db, reset=True, config_keys=None, replace=False, seal_key=None, ride_roots=None,
              group=None, tech_key=None, device_key=None, uplink=None):
    """`config_keys`: the path of a KEY.pub file (bundle keygen) for /flash/keys/config, or None.
    `ride_roots`: the path of a ride-code roots file for /flash/keys/ride-roots, or None.
    `group`: the terminal group for /flash/config/group, registered with the collector, or None.
    `uplink`: the path of an uplink config (JSON) for /flash/config/uplink.json, or None.
    `seal_key`: the collector's public (or private) PEM key for /flash/keys/seal.pub; None: the development key.
    A terminal id registered to a key this board does not hold belongs to another board: refused
    unless `replace` (then the other board's key stops working).  `tech_key`: a technician key file
    (`bundle techkey`) that opens a provisioned terminal's locked REPL.  `device_key`: the 32-byte key to
    give the board (a simulated terminal's, drawn from the run's seed); None: a fresh random one."""
    key = device_key or os.urandom(32)
    trusted = None if config_keys is None else read_config_keys(config_keys)
    sealing_text = seal_key_text(seal_key)
    roots = None if ride_roots is None else read_ride_roots(ride_roots)
    group = None if group is None else check_group(group)
    link = None if uplink is None else read_uplink(uplink)
    store = Store(db)  # opened first: a database that cannot be written must not leave a keyed board behind
    try:
        open_service(port, tech_key)
        terminal, held = identify(port)
        registered = store.device_key(terminal)
        if registered is not None and not replace and hashlib.sha256(registered).hexdigest() != held:
            raise ProvisionError("terminal %s is already registered to another board's key; give --replace to "
                                 "re-key it (the other board can no longer upload)" % terminal)
        token_key = store.token_key()
        terminal = write_key(port, key, config_keys=trusted, token_key=token_key, seal_text=sealing_text,
                             ride_roots=roots, group=group, uplink=link)
        store.register(terminal, key)
        if group is not None:
            store.assign_group(terminal, group)
        store.set_delivered(terminal, fleet.KIND_TOKEN_KEY, token_key[0])
    finally:
        store.close()
    if reset:
        soft_reset(port)
    return terminal


def main(args):
    try:
        terminal = provision(args.port, args.db, reset=not args.no_reset, config_keys=args.config_keys,
                             replace=args.replace, seal_key=args.seal_key, ride_roots=args.ride_roots,
                             group=args.group, tech_key=args.key, uplink=args.uplink)
    except (ProvisionError, subprocess.TimeoutExpired, serial.SerialException, OSError, ValueError) as e:
        print("provision failed: %s" % e, file=sys.stderr)
        return 1
    out = {"terminal": terminal, "db": args.db, "key_file": KEY_PATH, "seal_key_file": SEAL_KEY_PATH}
    if args.config_keys:
        out["config_keys_file"] = CONFIG_KEYS_PATH
    if args.ride_roots:
        out["ride_roots_file"] = RIDE_ROOTS_PATH
    if args.group:
        out["group"] = args.group
    if args.uplink:
        out["uplink_file"] = UPLINK_PATH
    # read back: SHA-256 matched
    out["verified"] = files_written(args.config_keys, args.ride_roots, args.group, args.uplink)
    print(json.dumps(out))
    return 0


def add_arguments(parser):
    parser.add_argument("--port", required=True, help="the board's REPL port (USB serial or a vboard console)")
    parser.add_argument("--db", required=True, type=arguments.database, help="the collector's SQLite database")
    parser.add_argument("--config-keys", metavar="KEY.pub",
                        help="the config authority's public keys (bundle keygen) for /flash/keys/config")
    parser.add_argument("--seal-key", metavar="PUBLIC.pem",
                        help="the collector's seal key (`seal keygen`) for /flash/keys/seal.pub (default: the "
                             "development key)")
    parser.add_argument("--ride-roots", metavar="FILE",
                        help="ride-code root keys (`qr ride-roots`) for /flash/keys/ride-roots")
    parser.add_argument("--group", metavar="NAME",
                        help="the terminal group (route, school, scenic area) its profile bundles are addressed to")
    parser.add_argument("--uplink", metavar="FILE.json",
                        help='the uplink config for /flash/config/uplink.json: {"link": "modem", "dialect": '
                             '"simcom"|"quectel", "host": H, "port": P, "apn": A} or {"link": "serial"}, and the '
                             'payment-code settings (protocol/SPEC.md)')
    parser.add_argument("--key", metavar="TECHKEY",
                        help="technician key (`bundle techkey`): opens service mode on a provisioned terminal, whose "
                             "REPL is locked")
    parser.add_argument("--no-reset", action="store_true", help="leave the board at the REPL afterwards")
    parser.add_argument("--replace", action="store_true",
                        help="re-key a terminal id registered to another board's key (that board stops uploading)")
