"""The REPL of a provisioned terminal is locked: whoever plugs into its console gets the technician
console (firmware/console.py), not a Python prompt that reads every key.

Provisioned means the terminal holds its device key and the config authority's public keys: only then
can a technician log in (the certificate is checked against those keys) and open service mode, which
gives the REPL back for flashing and provisioning.  A board without them stays open, as a fresh board
on the bench is.  main.py calls at_boot() before it loads anything else, so the window in which a
Ctrl-C still reaches the REPL is the MicroPython start-up itself.
"""

import os

KEY_FILE = "/keys/device.key"
CONFIG_KEYS_FILE = "/keys/config"


def provisioned(root):
    try:
        os.stat(root + KEY_FILE)
        os.stat(root + CONFIG_KEYS_FILE)
        return True
    except OSError:
        return False


def at_boot(board):
    """Lock the REPL of a provisioned terminal; True when locked."""
    if not provisioned(board.mount_flash()):
        return False
    board.repl_interrupt(False)
    return True
