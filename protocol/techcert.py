"""Technician certificates: who may log in to a terminal's console, issued by the fleet's config authority.

The config authority (the key that signs fleet bundles, protocol/fleet.py) signs a technician's public
RSA key with a role and an expiry.  The terminal already trusts that authority (/flash/keys/config), so
it needs no other secret: at login it checks the certificate, sends a random challenge, and the
technician's console client signs it with the technician's private key.  Nothing secret crosses the
cable and the board holds no password.  Big-endian:

    off   size  field
    0     4     "ZTC1"
    4     1     key id of the config key that signed it
    5     1     role: 1 viewer (read-only commands), 2 technician (every command, service mode)
    6     4     issued, seconds since 1970
    10    4     expires, seconds since 1970
    14    1     name length n (1 .. 32, printable ASCII)
    15    n     name (who: shown in the terminal's log)
    15+n  256   the technician's RSA-2048 modulus (exponent 65537)
    271+n 256   RSA PKCS#1 v1.5 SHA-256 signature by the config key over bytes 0 .. 271+n

A login response is the technician's PKCS#1 v1.5 SHA-256 signature over challenge_message(): the
certificate's own bytes are not in it, the terminal id and the one-time challenge are, so a response
is good for one terminal and one challenge only.
"""

import hashlib
import struct

from protocol import fleet, rsa

MAGIC = b"ZTC1"
ROLE_VIEWER = 1
ROLE_TECHNICIAN = 2
ROLES = {ROLE_VIEWER: "viewer", ROLE_TECHNICIAN: "technician"}
NAME_MAX = 32
HEAD = 15
MAX_SIZE = HEAD + NAME_MAX + 2 * rsa.SIZE
CHALLENGE = 16
_LOGIN = b"ZTC1 console login"


class CertError(ValueError):
    pass


def body(key_id, role, issued, expires, name, modulus):
    """The signed part of a certificate (host side builds it; `modulus` an int)."""
    name = name.encode() if isinstance(name, str) else bytes(name)
    _check_name(name)
    if role not in ROLES:
        raise CertError("unknown role %r" % (role,))
    return (MAGIC + struct.pack(">BBIIB", key_id, role, issued, expires, len(name)) + name
            + modulus.to_bytes(rsa.SIZE, "big"))


def _check_name(name):
    if not 1 <= len(name) <= NAME_MAX or any(c < 0x21 or c > 0x7E for c in name):
        raise CertError("a name is 1 .. %d printable ASCII characters without spaces" % NAME_MAX)


def parse(data, config_keys, now):
    """The certificate checked against the config keys (a protocol.ticket.Keyring) and the clock, as a dict
    {"role", "name", "issued", "expires", "n"}; raises CertError with a reason.  A clock before the
    certificate's issue time is a clock never set: then the expiry cannot be judged and is not."""
    data = bytes(data)
    if len(data) < HEAD + 1 + 2 * rsa.SIZE or len(data) > MAX_SIZE or data[:4] != MAGIC:
        raise CertError("not a technician certificate")
    key_id, role, issued, expires, n = struct.unpack_from(">BBIIB", data, 4)
    if len(data) != HEAD + n + 2 * rsa.SIZE:
        raise CertError("certificate length does not match its name")
    signed = HEAD + n + rsa.SIZE
    try:
        fleet.check_signature(hashlib.sha256(data[:signed]).digest(), data[signed:], key_id, config_keys)
    except fleet.FleetError as e:
        raise CertError(str(e).replace("fleet bundle", "certificate")) from None
    name = data[HEAD:HEAD + n]
    _check_name(name)
    if role not in ROLES:
        raise CertError("unknown role %d" % role)
    if now >= issued and now > expires:
        raise CertError("certificate expired")
    modulus = rsa.modulus(data[HEAD + n:signed])
    if modulus is None:
        raise CertError("certificate key is not RSA-2048")
    return {"role": role, "name": name.decode(), "issued": issued, "expires": expires, "n": modulus}


def challenge_message(terminal, challenge):
    """What the technician signs at login: a fixed label, the terminal id (8 bytes) and the challenge."""
    return _LOGIN + bytes(terminal) + bytes(challenge)


def check_response(cert, terminal, challenge, signature):
    """True when `signature` is the certificate holder's signature of this terminal's challenge."""
    return rsa.verify(challenge_message(terminal, challenge), signature, cert["n"])
