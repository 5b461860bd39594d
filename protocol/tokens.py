"""Fleet-wide credential tokens: one card, one token, on every terminal.

A credential's token is HMAC-SHA256(fleet token key, account digits)[0:16]: the same card gets the
same token on every terminal, so a deny-list entry made from one terminal's upload holds on all of
them, while nobody without the key can test a guessed card number against a token.  16 bytes is the
record's token field; 128 bits leave no practical collision among a county's cards.

The key itself reaches a terminal sealed, as config kind 4 (protocol/tokenkey.py); a record names the
version its token was made under (record.EXT_TOKEN_KEY).  This module is on the tap path, so it holds
only the two token functions.  Runs unchanged on CPython and MicroPython.
"""

import hashlib
import struct

from protocol import crypto

TOKEN_SIZE = 16


def token(key, account):
    """The 16-byte token of `account` (digits, str or bytes) under the fleet token key `key`."""
    return crypto.hmac_sha256(key, account.encode() if isinstance(account, str) else bytes(account))[:TOKEN_SIZE]


def ticket_token(issuer, ticket_id):
    """A signed ticket's token: SHA-256("zf ticket" || issuer u16 BE || ticket id)[0:16], under no key.

    A ticket is no card: its issuer and id are printed in the QR code and signed, so hiding them buys
    nothing, and a keyless token lets tickets work on a terminal without a token key, survive key
    rotation, and be counted across the fleet by the host."""
    return hashlib.sha256(b"zf ticket" + struct.pack(">H", issuer) + bytes(ticket_id)).digest()[:TOKEN_SIZE]
