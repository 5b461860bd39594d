"""Trusted ticket issuer keys, read at boot from /flash/keys/tickets.

The file is the keyring text form of protocol/ticket.py, one entry a line:
    key <issuer> <key id> <modulus, 512 hex digits>     RSA-2048, exponent 65537
    revoked <issuer> <key id>
Lines starting with '#' are comments.  A line the terminal cannot read is skipped and counted (the
rest of the file still counts), so one bad line does not lock every ticket out.  Provisioning writes
the file (for now: mpremote fs cp, or `python -m host_sim qr keyring ... > tickets`).
"""

from protocol import ticket

KEYS_FILE = "keys/tickets"


def load(root):
    """(keyring, lines skipped); an absent file gives an empty keyring (every ticket declined)."""
    ring = ticket.Keyring()
    bad = 0
    try:
        with open(root + "/" + KEYS_FILE) as f:
            for line in f:
                try:
                    ring.load_line(line)
                except ticket.TicketError:
                    bad += 1
    except OSError:
        pass
    return ring, bad
