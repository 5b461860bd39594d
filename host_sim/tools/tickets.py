"""The ticket issuer (host side): RSA-2048 keys per (issuer, key id), signing, keyring files.

Keys live as PEM files in a directory (default host_sim/.ticket_keys in a checkout, made on
first use; host_sim/paths.py):
issuer-<issuer>-key-<kid>.pem.  The terminal gets only the public half, as lines of the keyring
text form in protocol/ticket.py, written to /flash/keys/tickets on the board.
"""

import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from host_sim.paths import TICKET_KEYS
from protocol import ticket

DEFAULT_DIR = TICKET_KEYS


def key_path(directory, issuer, key_id):
    return os.path.join(directory, "issuer-%d-key-%d.pem" % (issuer, key_id))


def generate_key():
    return rsa.generate_private_key(public_exponent=ticket.E, key_size=2048)


def load_or_create(issuer, key_id, directory=DEFAULT_DIR):
    """The issuer's private key with this key id, generated and stored (mode 600) the first time."""
    path = key_path(directory, issuer, key_id)
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = generate_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def issue(key, issuer, key_id, ticket_id, product=1, valid_from=None, valid_to=None, entries=1,
          holder=b"", party=1):
    """The QR text of a ticket signed with `key` (PKCS#1 v1.5, SHA-256); a party over 1 makes a group
    ticket (protocol/ticket.py VERSION_PARTY), a party of 1 the version 1 every terminal reads."""
    now = int(time.time())
    valid_from = now - 60 if valid_from is None else valid_from
    valid_to = valid_from + 86400 if valid_to is None else valid_to
    version = ticket.VERSION if party == 1 else ticket.VERSION_PARTY
    signed = ticket.body(version, issuer, key_id, ticket_id, product, valid_from, valid_to, entries, holder,
                         party)
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return ticket.encode(signed, signature)


def keyring_line(key, issuer, key_id):
    """The public key as one line of the terminal's keyring file."""
    n = key.public_key().public_numbers().n
    return "key %d %d %0512x" % (issuer, key_id, n)


def new_ticket_id():
    return os.urandom(8)


def stored_keys(directory=DEFAULT_DIR):
    """(issuer, key id, private key) of every key kept in `directory`."""
    out = []
    if not os.path.isdir(directory):
        return out
    for name in sorted(os.listdir(directory)):
        parts = name[:-4].split("-") if name.endswith(".pem") else []
        if len(parts) == 4 and parts[0] == "issuer" and parts[2] == "key":
            with open(os.path.join(directory, name), "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            out.append((int(parts[1]), int(parts[3]), key))
    return out
