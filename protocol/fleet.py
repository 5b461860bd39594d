"""Fleet config bundles: fares and ticket keys, signed once offline by the config authority (RSA).

Unlike a deny-list delta (protocol/bundle.py, made per terminal by the collector), a fleet bundle is
the same bytes for every terminal.  The authority signs it with its RSA-2048 private key; terminals
hold only public keys (/flash/keys/config) and verify with pow() (protocol/rsa.py).  The signature is
inside the bundle, because CONFIG_OFFER's signature field holds at most 255 bytes; the offer keeps
its per-terminal HMAC (protocol/bundle.py) on top.  Big-endian, like tickets:

    off    size  field
    0      4     "ZFB1"
    4      1     kind: 2 ticket keys, 3 fares
    5      1     key id of the config key that signed it
    6      2     body length b
    8      4     version: per kind, a terminal only moves to a higher one
    12     4     issued, seconds since 1970 (informational)
    16     b     body (below)
    16+b   256   RSA-2048 PKCS#1 v1.5 SHA-256 signature over bytes 0 .. 16+b

Kind 2, ticket keys (replace the terminal's whole ticket keyring):
    n_keys u8 | n_revoked u8 | n_tickets u8
    n_keys    x (issuer u16, key id u8, modulus 256)
    n_revoked x (issuer u16, key id u8)           revoked ticket keys
    n_tickets x (issuer u16, ticket id 8)         revoked single tickets
Kind 3, fares (flat fare per credential kind, protocol/record.py KIND_*):
    n u8 | n x (credential kind u8, fare u32 in fen)
Kind 5, revoked ride-code issuers (protocol/ridecode.py; replaces the terminal's whole list):
    n u8 | n x (issuer u16, issuer key id u8)
Kind 6, a terminal profile (protocol/profile.py): a UTF-8 JSON object of at most profile.MAX_BODY bytes,
    addressed to one terminal group ("group"); a terminal of another group refuses it.

Every reader raises FleetError with a reason; sizes are capped so a terminal's RAM stays bounded.
Bundles are built and signed on the host only (host_sim/tools/bundle.py), so the terminal never loads that code.
"""

import hashlib
import struct

from protocol import profile, rsa

MAGIC = b"ZFB1"
HEAD = 16
SIG = rsa.SIZE
KIND_TICKET_KEYS = 2
KIND_FARES = 3
KIND_TOKEN_KEY = 4  # per terminal and sealed to it, not an RSA-signed fleet bundle: protocol/tokens.py
KIND_RIDE_REVOKED = 5
KIND_PROFILE = 6  # protocol/profile.py: the product a terminal group runs, and its limits
KIND_ROSTER = 7  # a school's roster of student passes
NAMES = {KIND_TICKET_KEYS: "ticket-keys", KIND_FARES: "fares", KIND_TOKEN_KEY: "token-key",
         KIND_RIDE_REVOKED: "ride-revoked", KIND_PROFILE: "profile"}

MAX_KEYS = 16
MAX_REVOKED = 64
MAX_TICKETS = 64
MAX_FARES = 16
MAX_RIDE_REVOKED = 64
KEY_ENTRY = 259
REVOKED_ENTRY = 3
TICKET_ENTRY = 10
FARE_ENTRY = 5
MAX_BODY = {
    KIND_TICKET_KEYS: 3 + MAX_KEYS * KEY_ENTRY + MAX_REVOKED * REVOKED_ENTRY + MAX_TICKETS * TICKET_ENTRY,
    KIND_FARES: 1 + MAX_FARES * FARE_ENTRY,
    KIND_RIDE_REVOKED: 1 + MAX_RIDE_REVOKED * REVOKED_ENTRY,
    KIND_PROFILE: profile.MAX_BODY,
}
MAX_SIZE = HEAD + MAX_BODY[KIND_TICKET_KEYS] + SIG
AUTHORITY = 0  # the "issuer" of config keys in the keyring text form of /flash/keys/config


class FleetError(ValueError):
    pass


# -- reading (both) ---------------------------------------------------------------------------------


def head(raw, size):
    """(kind, key id, body length, version, issued) of a bundle of `size` bytes starting with `raw`."""
    if len(raw) < HEAD or bytes(raw[:4]) != MAGIC:
        raise FleetError("not a fleet bundle")
    kind, kid, b, version, issued = struct.unpack_from(">BBHII", raw, 4)
    if kind not in MAX_BODY:
        raise FleetError("fleet bundle kind %d unknown" % kind)
    if b > MAX_BODY[kind]:
        raise FleetError("%s body of %d bytes, at most %d" % (NAMES[kind], b, MAX_BODY[kind]))
    if size != HEAD + b + SIG:
        raise FleetError("fleet bundle is %d bytes, its header says %d" % (size, HEAD + b + SIG))
    if version == 0:
        raise FleetError("fleet bundle version 0")
    return kind, kid, b, version, issued


def fares(body):
    """{credential kind: fare} of a fares body."""
    if not len(body) or len(body) != 1 + body[0] * FARE_ENTRY or not 0 < body[0] <= MAX_FARES:
        raise FleetError("fare table of %d bytes is malformed" % len(body))
    out = {}
    for i in range(body[0]):
        kind, fare = struct.unpack_from(">BI", body, 1 + i * FARE_ENTRY)
        if kind in out:
            raise FleetError("fare for credential kind %d twice" % kind)
        out[kind] = fare
    return out


def ride_revoked(body):
    """{(issuer, key id)} of a ride-revocation body."""
    if not len(body) or len(body) != 1 + body[0] * REVOKED_ENTRY or body[0] > MAX_RIDE_REVOKED:
        raise FleetError("ride revocation list of %d bytes is malformed" % len(body))
    return set(struct.unpack_from(">HB", body, 1 + i * REVOKED_ENTRY) for i in range(body[0]))


def profile_body(body):
    """The checked profile dict of a profile body (protocol/profile.py parse); FleetError with its reason."""
    try:
        return profile.parse(body)
    except profile.ProfileError as e:
        raise FleetError("profile refused: %s" % e)


def ticket_counts(raw, body_len):
    """(n_keys, n_revoked, n_tickets) from the first 3 body bytes, checked against the body length."""
    if len(raw) < 3:
        raise FleetError("ticket-key body truncated")
    nk, nr, nt = raw[0], raw[1], raw[2]
    if nk > MAX_KEYS or nr > MAX_REVOKED or nt > MAX_TICKETS:
        raise FleetError("ticket-key body over its caps")
    if body_len != 3 + nk * KEY_ENTRY + nr * REVOKED_ENTRY + nt * TICKET_ENTRY:
        raise FleetError("ticket-key body of %d bytes does not match its counts" % body_len)
    return nk, nr, nt


def key_entry(raw):
    """(issuer, key id, modulus) of one 259-byte key entry."""
    issuer, kid = struct.unpack_from(">HB", raw, 0)
    n = rsa.modulus(raw[3:KEY_ENTRY])
    if n is None:
        raise FleetError("ticket key %d/%d is not an RSA-2048 modulus" % (issuer, kid))
    return issuer, kid, n


def entry_size(i, nk, nr):
    """Size of the i-th entry after the counts: keys, then revoked keys, then revoked tickets."""
    return KEY_ENTRY if i < nk else REVOKED_ENTRY if i < nk + nr else TICKET_ENTRY


def add_entry(ring, raw, i, nk, nr):
    """Put the i-th entry (raw bytes of entry_size) into a protocol.ticket.Keyring."""
    if i < nk:
        issuer, kid, n = key_entry(raw)
        ring.add(issuer, kid, n)
    elif i < nk + nr:
        ring.revoke(*struct.unpack_from(">HB", raw, 0))
    else:
        ring.revoked_tickets.add((struct.unpack_from(">H", raw, 0)[0], bytes(raw[2:TICKET_ENTRY])))


def keyring(body):
    """A protocol.ticket.Keyring from a whole ticket-keys body (host, tests; the terminal streams)."""
    from protocol import ticket

    nk, nr, nt = ticket_counts(body, len(body))
    ring = ticket.Keyring()
    off = 3
    for i in range(nk + nr + nt):
        size = entry_size(i, nk, nr)
        add_entry(ring, body[off:off + size], i, nk, nr)
        off += size
    return ring


def check_signature(digest, signature, key_id, config_keys):
    """Raises FleetError unless `signature` over the signed part (its SHA-256 `digest`) verifies with
    the config key `key_id` of `config_keys` (a protocol.ticket.Keyring of issuer AUTHORITY)."""
    ref = (AUTHORITY, key_id)
    if ref in config_keys.revoked:
        raise FleetError("config key %d is revoked" % key_id)
    n = config_keys.keys.get(ref)
    if n is None:
        raise FleetError("no config key %d" % key_id)
    if not rsa.verify_digest(digest, signature, n):
        raise FleetError("bad signature on fleet bundle (config key %d)" % key_id)


def parse(data, config_keys):
    """The whole bundle checked (layout, signature, body) as a dict; raises FleetError."""
    kind, kid, b, version, issued = head(data[:HEAD], len(data))
    check_signature(hashlib.sha256(data[:HEAD + b]).digest(), data[HEAD + b:], kid, config_keys)
    body = data[HEAD:HEAD + b]
    out = {"kind": kind, "key_id": kid, "version": version, "issued": issued}
    if kind == KIND_FARES:
        out["fares"] = fares(body)
    elif kind == KIND_RIDE_REVOKED:
        out["ride_revoked"] = sorted(ride_revoked(body))
    elif kind == KIND_PROFILE:
        out["profile"] = profile_body(body)
    else:
        ring = keyring(body)
        out["keys"] = sorted(ring.keys.items())
        out["revoked"] = sorted(ring.revoked)
        out["tickets"] = sorted(ring.revoked_tickets)
    return out
