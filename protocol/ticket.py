"""Signed tickets and passes in a QR code: scenic-gate tickets, school-bus passes, ride codes.

The QR text is "ZT1." followed by base64url (no padding) of a compact binary ticket:

    off size field
    0   1    version (1)
    1   2    issuer id            big-endian, like every integer here
    3   1    key id               which of the issuer's keys signed it (rotation)
    4   8    ticket id
    12  2    product id
    14  4    valid from           seconds since 1970, inclusive
    18  4    valid to             seconds since 1970, exclusive
    22  1    entries allowed      1-255; 0 = unlimited within the window
    23  1    holder length h      0-32
    24  h    holder reference     opaque bytes (a salted hash or a pass number, never a name)
    24+h 256 signature           RSA-2048 PKCS#1 v1.5 with SHA-256 over bytes 0 .. 24+h

Version 2 (a group ticket) is version 1 with one byte more after "entries allowed": the party size
(1-255), how many people each entry admits; the holder length and what follows move up by one (head of
25 bytes).  A version 1 ticket admits a party of 1.  Terminals read both versions.

The terminal holds only public keys (modulus, exponent 65537) per (issuer, key id) and verifies with
pow() (protocol/rsa.py), which MicroPython's long integers do in about a millisecond.  Revoked key ids
are refused even while their key is still on file, and so are single revoked tickets (a lost pass;
they come with the fleet's ticket-key bundle, protocol/fleet.py).  Every failure raises TicketError
whose `code` names the reason.
"""

import binascii
import struct

from protocol import rsa

PREFIX = "ZT1."
VERSION = 1
VERSION_PARTY = 2  # a group ticket: version 1 plus a party size after "entries allowed"
HEAD = ">BHB8sHIIBB"
HEAD_SIZE = 24
HEAD_PARTY = ">BHB8sHIIBBB"
HEAD_PARTY_SIZE = 25
SIG_SIZE = rsa.SIZE
MAX_HOLDER = 32
E = rsa.E
MAX_TEXT = 512

# TicketError.code values
MALFORMED = "malformed"
UNKNOWN_KEY = "unknown key"
REVOKED_KEY = "revoked key"
REVOKED_TICKET = "revoked ticket"
BAD_SIGNATURE = "bad signature"
NOT_YET_VALID = "not yet valid"
EXPIRED = "expired"
USED_UP = "used up"


class TicketError(ValueError):
    def __init__(self, code, message=None):
        super().__init__(message or code)
        self.code = code


def is_ticket(text):
    return text[:4] == (PREFIX if isinstance(text, str) else b"ZT1.")


def body(version, issuer, key_id, ticket_id, product, valid_from, valid_to, entries, holder=b"", party=1):
    """The signed part of a ticket; `party` (1-255) only in a VERSION_PARTY ticket."""
    if len(holder) > MAX_HOLDER or len(ticket_id) != 8:
        raise TicketError(MALFORMED, "holder over %d bytes or ticket id not 8 bytes" % MAX_HOLDER)
    if version == VERSION_PARTY:
        if not 0 < party < 256:
            raise TicketError(MALFORMED, "party size %d outside 1..255" % party)
        return struct.pack(HEAD_PARTY, version, issuer, key_id, ticket_id, product, valid_from, valid_to,
                           entries, party, len(holder)) + bytes(holder)
    if party != 1:
        raise TicketError(MALFORMED, "a party size needs ticket version %d" % VERSION_PARTY)
    return struct.pack(HEAD, version, issuer, key_id, ticket_id, product, valid_from, valid_to, entries,
                       len(holder)) + bytes(holder)


def encode(signed_body, signature):
    """The QR text of a body and its signature."""
    raw = binascii.b2a_base64(bytes(signed_body) + bytes(signature)).strip().decode()
    return PREFIX + raw.replace("+", "-").replace("/", "_").rstrip("=")


def parse(text):
    """(fields dict, signed body, signature) of the QR text; raises TicketError(MALFORMED)."""
    if len(text) > MAX_TEXT:
        raise TicketError(MALFORMED, "ticket longer than %d characters" % MAX_TEXT)
    if not is_ticket(text):
        raise TicketError(MALFORMED, "no %s prefix" % PREFIX)
    if not isinstance(text, str):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise TicketError(MALFORMED, "ticket is not ASCII")
    b64 = text[4:].replace("-", "+").replace("_", "/")
    if len(b64) % 4 == 1:
        raise TicketError(MALFORMED, "base64url length impossible")
    try:
        raw = binascii.a2b_base64(b64 + "=" * (-len(b64) % 4))
    except (ValueError, TypeError):
        raise TicketError(MALFORMED, "ticket is not base64url")
    if len(raw) < HEAD_SIZE + SIG_SIZE:
        raise TicketError(MALFORMED, "ticket of %d bytes is shorter than %d" % (len(raw), HEAD_SIZE + SIG_SIZE))
    if raw[0] == VERSION_PARTY:
        size = HEAD_PARTY_SIZE
        version, issuer, key_id, ticket_id, product, valid_from, valid_to, entries, party, h = struct.unpack(
            HEAD_PARTY, raw[:size])
    elif raw[0] == VERSION:
        size = HEAD_SIZE
        version, issuer, key_id, ticket_id, product, valid_from, valid_to, entries, h = struct.unpack(
            HEAD, raw[:size])
        party = 1
    else:
        raise TicketError(MALFORMED, "ticket version %d unsupported" % raw[0])
    if h > MAX_HOLDER or len(raw) != size + h + SIG_SIZE:
        raise TicketError(MALFORMED, "ticket length %d does not match holder length %d" % (len(raw), h))
    end = size + h
    fields = {
        "version": version, "issuer": issuer, "key_id": key_id, "ticket_id": ticket_id,
        "product": product, "valid_from": valid_from, "valid_to": valid_to, "entries": entries,
        "holder": raw[size:end], "party": party,
    }
    if valid_to <= valid_from:
        raise TicketError(MALFORMED, "validity window is empty")
    if not party:
        raise TicketError(MALFORMED, "party size 0")
    return fields, raw[:end], raw[end:]


class Keyring:
    """Trusted ticket keys: (issuer, key id) -> modulus, and the revoked (issuer, key id) pairs.

    Text form, one entry a line ('#' starts a comment):
        key <issuer> <key id> <modulus hex>     exponent 65537
        revoked <issuer> <key id>
    """

    def __init__(self):
        self.keys = {}
        self.revoked = set()
        self.revoked_tickets = set()  # (issuer, ticket id)

    def add(self, issuer, key_id, n):
        self.keys[(issuer, key_id)] = n

    def revoke(self, issuer, key_id):
        self.revoked.add((issuer, key_id))

    def load_line(self, line):
        """Adds one line of the text form; raises TicketError(MALFORMED) for a line it cannot read."""
        words = line.split()
        if not words or words[0].startswith("#"):
            return
        try:
            if words[0] == "key" and len(words) == 4:
                n = int(words[3], 16)
                if len(words[3].lstrip("0")) != SIG_SIZE * 2 or n >> (SIG_SIZE * 8 - 1) != 1:
                    raise ValueError("modulus is not 2048 bits")
                self.add(int(words[1]), int(words[2]), n)
                return
            if words[0] == "revoked" and len(words) == 3:
                self.revoke(int(words[1]), int(words[2]))
                return
        except ValueError:
            pass
        raise TicketError(MALFORMED, "bad key line: %s" % line[:40])

    def verify(self, text):
        """The fields of a ticket whose signature a trusted, unrevoked key made; raises TicketError."""
        fields, signed, signature = parse(text)
        ref = (fields["issuer"], fields["key_id"])
        if ref in self.revoked:
            raise TicketError(REVOKED_KEY, "key %d/%d is revoked" % ref)
        n = self.keys.get(ref)
        if n is None:
            raise TicketError(UNKNOWN_KEY, "no key %d/%d" % ref)
        if not rsa.verify(signed, signature, n):
            raise TicketError(BAD_SIGNATURE)
        if (fields["issuer"], fields["ticket_id"]) in self.revoked_tickets:
            raise TicketError(REVOKED_TICKET)
        return fields


def check_window(fields, now):
    """Raises TicketError when `now` (seconds since 1970) is outside the ticket's validity window."""
    if now < fields["valid_from"]:
        raise TicketError(NOT_YET_VALID)
    if now >= fields["valid_to"]:
        raise TicketError(EXPIRED)
