"""Trusted public keys, read at boot: ticket issuers' keys and the config authority's keys.

/flash/keys/tickets and /flash/keys/config are the keyring text form of protocol/ticket.py:
    key <issuer> <key id> <modulus, 512 hex digits>     RSA-2048, exponent 65537
    revoked <issuer> <key id>
Lines starting with '#' are comments.  A line the terminal cannot read is skipped and counted (the
rest of the file still counts), so one bad line does not lock every ticket out.  Provisioning writes
both files (`python -m host_sim provision --config-key ...`; tickets for now with mpremote fs cp).
A fleet ticket-key bundle (protocol/fleet.py), once activated, replaces /flash/keys/tickets.
Config keys are issuer 0 (protocol.fleet.AUTHORITY); they verify fleet bundles, never tickets.
"""

import os

from protocol import ticket

KEYS_FILE = "keys/tickets"
CONFIG_KEYS_FILE = "keys/config"


def has_fleet_bundles(root):
    """Whether any fleet bundle is active (config/fleet-<kind>.bin, fleet.py): the code that reads them
    is loaded only then (heap)."""
    try:
        return any(name.startswith("fleet-") for name in os.listdir(root + "/config"))
    except OSError:
        return False


def load_file(path):
    """(keyring, lines skipped); an absent file gives an empty keyring."""
    ring = ticket.Keyring()
    bad = 0
    try:
        with open(path) as f:
            for line in f:
                try:
                    ring.load_line(line)
                except ticket.TicketError:
                    bad += 1
    except OSError:
        pass
    return ring, bad


def load(root):
    """(ticket keyring, lines skipped): the active fleet ticket-key bundle, else /flash/keys/tickets;
    no keys at all give an empty keyring (every ticket declined)."""
    if has_fleet_bundles(root):
        from firmware.config import fleet
        from protocol.fleet import KIND_TICKET_KEYS

        active = fleet.load(root, KIND_TICKET_KEYS)
        if active is not None:
            print("ticket keys: fleet bundle version %d" % active[0])
            return active[1], 0
    return load_file(root + "/" + KEYS_FILE)


def config_keys(root):
    """The config authority's public keys (only issuer protocol.fleet.AUTHORITY is ever looked up)."""
    return load_file(root + "/" + CONFIG_KEYS_FILE)[0]
