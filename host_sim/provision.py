"""`python -m host_sim provision --port CONSOLE_PORT --db COLLECTOR_DB`: give a terminal its device key.

Generates a random 32-byte key, writes it to the board's /flash/keys/device.key over the REPL with
mpremote (the same on a USB board and a virtual board's console), reads back the terminal id and
registers (terminal id, key) in the collector's database.  Then it soft-resets the board (Ctrl-D at
the REPL), so the firmware starts again and authenticates with the new key.  The key is never printed.
"""

import json
import os
import subprocess
import sys
import time

import serial

from host_sim import collector
from host_sim.flash import mpremote_exe

KEY_PATH = "/flash/keys/device.key"

# Runs on the board: write the key atomically (a power cut leaves the old key or the new one) and
# print the terminal id the firmware will announce.
BOARD_SCRIPT = """\
import os, board
from firmware import identity
try:
    os.mkdir('/flash/keys')
except OSError:
    pass
with open('%(path)s.new', 'wb') as f:
    f.write(bytes.fromhex('%(key)s'))
os.rename('%(path)s.new', '%(path)s')
print('terminal=' + identity.terminal_id(board).hex())
"""


class ProvisionError(Exception):
    pass


def write_key(port, key, timeout=60):
    """Write `key` to the board on `port`; returns its terminal id (hex)."""
    script = BOARD_SCRIPT % {"path": KEY_PATH, "key": key.hex()}
    proc = subprocess.run([mpremote_exe(), "connect", port, "exec", script], capture_output=True, text=True,
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


def provision(port, db, reset=True):
    key = os.urandom(32)
    terminal = write_key(port, key)
    store = collector.Store(db)
    try:
        store.register(terminal, key)
    finally:
        store.close()
    if reset:
        soft_reset(port)
    return terminal


def main(args):
    try:
        terminal = provision(args.port, args.db, reset=not args.no_reset)
    except (ProvisionError, subprocess.TimeoutExpired, serial.SerialException, OSError) as e:
        print("provision failed: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps({"terminal": terminal, "db": args.db, "key_file": KEY_PATH}))
    return 0


def add_arguments(parser):
    parser.add_argument("--port", required=True, help="the board's REPL port (USB serial or a vboard console)")
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--no-reset", action="store_true", help="leave the board at the REPL afterwards")
