"""Ride codes (乘车码): offline QR codes whose chain of signatures a terminal checks with no network.

A root (the ride-code scheme's trust anchor, provisioned on the terminal) certifies an issuer (the
ride-code platform), the issuer certifies a rider's key, and the rider's phone signs each code's
dynamic part (generation time, counter, product).  SPEC.md "Ride codes" has the layout; in short,
QR text "ZR1." + base64url (no padding) of 365 bytes, big-endian:

    off  size  field
    0    1     version (1)
    1    142   issuer certificate, signed by the root:
               root id u8, signature alg u8, issuer id u16, issuer key id u8, issuer key alg u8,
               valid from u32, valid to u32, issuer key X||Y (64), root signature r||s (64)
    143  148   user certificate, signed by the issuer key:
               issuer id u16, issuer key id u8, user id (8), user key alg u8, valid from u32,
               valid to u32, user key X||Y (64), issuer signature r||s (64)
    291  10    dynamic data: generated u32, counter u32, product u16
    301  64    code signature by the user key over bytes 0 .. 301

Algorithms: ALG_SM2 (SM2 with SM3, GM/T 0003, signer id "1234567812345678") or ALG_P256 (ECDSA
P-256 with SHA-256).  Each signature is over the bytes of its certificate before the signature.

decode() raises only RideCodeError, whose `code` is one of the reasons below; Verifier.check()
returns OK or a reason and never raises.  A verified issuer certificate is remembered (its bytes and
its issuer key, given a comb table by prepare_pending() while the terminal is idle, protocol/ecc.py), so a
code costs one prepared-key verify (issuer -> user) and one plain verify (user -> code) once its issuer
is known, and three plain verifies the first time.
"""

import binascii
import gc
import hashlib
import struct

from protocol import ecc

PREFIX = "ZR1."
VERSION = 1
ALG_SM2 = 1
ALG_P256 = 2
ALG_NAMES = {ALG_SM2: "sm2", ALG_P256: "p256"}
CURVES = {ALG_SM2: ecc.SM2, ALG_P256: ecc.P256}

ISSUER_HEAD = ">BBHBBII"  # root id, alg, issuer, issuer key id, issuer key alg, valid from, valid to
ISSUER_HEAD_SIZE = 14
USER_HEAD = ">HB8sBII"  # issuer, issuer key id, user id, user key alg, valid from, valid to
USER_HEAD_SIZE = 20
DYNAMIC = ">IIH"  # generated, counter, product
DYNAMIC_SIZE = 10
KEY = 64
SIG = 64
ISSUER_CERT = ISSUER_HEAD_SIZE + KEY + SIG  # 142
USER_CERT = USER_HEAD_SIZE + KEY + SIG  # 148
USER_AT = 1 + ISSUER_CERT
DYNAMIC_AT = USER_AT + USER_CERT
SIGNED = DYNAMIC_AT + DYNAMIC_SIZE  # 301
SIZE = SIGNED + SIG  # 365
MAX_TEXT = len(PREFIX) + (SIZE * 4 + 2) // 3  # 491

WINDOW = 60  # s: a code older than this (by the board clock) is refused
SKEW = 30  # s: a code from at most this far in the future is allowed (phone and board clocks differ)
MAX_ISSUERS = 4  # verified issuer certificates remembered (~5 KB of comb table per issuer key)
MAX_USERS = 64  # verified user certificates remembered by digest (16 bytes each): a returning rider's code
# then costs one verify (the code's own), not two

# verdicts
OK = "ok"
MALFORMED = "malformed"
NO_CLOCK = "no clock"
UNKNOWN_ROOT = "unknown root"
ISSUER_REVOKED = "issuer revoked"
ISSUER_SIGNATURE = "bad issuer signature"
ISSUER_EXPIRED = "issuer certificate expired"
USER_SIGNATURE = "bad user certificate signature"
USER_EXPIRED = "user certificate expired"
CODE_SIGNATURE = "bad code signature"
TOO_OLD = "code too old"
FUTURE = "code from the future"
ALREADY_USED = "already used"
VERDICTS = (OK, MALFORMED, NO_CLOCK, UNKNOWN_ROOT, ISSUER_REVOKED, ISSUER_SIGNATURE, ISSUER_EXPIRED,
            USER_SIGNATURE, USER_EXPIRED, CODE_SIGNATURE, TOO_OLD, FUTURE, ALREADY_USED)


class RideCodeError(ValueError):
    def __init__(self, code, message=None):
        super().__init__(message or code)
        self.code = code


def is_ride_code(text):
    return text[:4] == (PREFIX if isinstance(text, str) else b"ZR1.")


# -- building (host tools and tests; pure byte packing) ---------------------------------------------


def issuer_cert_body(root_id, alg, issuer, key_id, key_alg, valid_from, valid_to, key):
    return struct.pack(ISSUER_HEAD, root_id, alg, issuer, key_id, key_alg, valid_from, valid_to) + bytes(key)


def user_cert_body(issuer, key_id, user_id, key_alg, valid_from, valid_to, key):
    return struct.pack(USER_HEAD, issuer, key_id, bytes(user_id), key_alg, valid_from, valid_to) + bytes(key)


def code_body(issuer_cert, user_cert, generated, counter, product):
    """The signed part of a code (bytes 0 .. SIGNED): certificates with their signatures, then the dynamic data."""
    return bytes([VERSION]) + bytes(issuer_cert) + bytes(user_cert) + struct.pack(DYNAMIC, generated, counter,
                                                                                    product)


def encode(signed, signature):
    raw = binascii.b2a_base64(bytes(signed) + bytes(signature)).strip().decode()
    return PREFIX + raw.replace("+", "-").replace("/", "_").rstrip("=")


# -- reading ------------------------------------------------------------------------------------------


def _raw(text):
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise RideCodeError(MALFORMED, "not text")
    if not isinstance(text, str):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise RideCodeError(MALFORMED, "not ASCII")
    if not is_ride_code(text):
        raise RideCodeError(MALFORMED, "no %s prefix" % PREFIX)
    if len(text) != MAX_TEXT:
        raise RideCodeError(MALFORMED, "%d characters, a ride code has %d" % (len(text), MAX_TEXT))
    b64 = text[4:].replace("-", "+").replace("_", "/")
    try:
        raw = binascii.a2b_base64(b64 + "=" * (-len(b64) % 4))
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        raise RideCodeError(MALFORMED, "not base64url")
    if len(raw) != SIZE:
        raise RideCodeError(MALFORMED, "%d bytes, a ride code has %d" % (len(raw), SIZE))
    return raw


def _point(alg, raw, what):
    curve = CURVES.get(alg)
    if curve is None:
        raise RideCodeError(MALFORMED, "%s algorithm %d unknown" % (what, alg))
    if not curve.on_curve(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:KEY], "big")):
        raise RideCodeError(MALFORMED, "%s key is not a point on %s" % (what, curve.name))
    return raw


def decode(text):
    """The fields of a ride code (text or bytes) as a dict; raises RideCodeError(MALFORMED, why)."""
    raw = _raw(text)
    if raw[0] != VERSION:
        raise RideCodeError(MALFORMED, "version %d unknown" % raw[0])
    root_id, alg, issuer, key_id, key_alg, i_from, i_to = struct.unpack_from(ISSUER_HEAD, raw, 1)
    u_issuer, u_kid, user_id, user_alg, u_from, u_to = struct.unpack_from(USER_HEAD, raw, USER_AT)
    generated, counter, product = struct.unpack_from(DYNAMIC, raw, DYNAMIC_AT)
    if alg not in CURVES:
        raise RideCodeError(MALFORMED, "issuer certificate signature algorithm %d unknown" % alg)
    if (u_issuer, u_kid) != (issuer, key_id):
        raise RideCodeError(MALFORMED, "user certificate names issuer %d/%d, the code carries %d/%d"
                            % (u_issuer, u_kid, issuer, key_id))
    if i_to <= i_from or u_to <= u_from:
        raise RideCodeError(MALFORMED, "a certificate ends before it starts")
    k = 1 + ISSUER_HEAD_SIZE
    u = USER_AT + USER_HEAD_SIZE
    return {
        "root": root_id, "alg": alg, "issuer": issuer, "issuer_key_id": key_id, "issuer_alg": key_alg,
        "issuer_from": i_from, "issuer_to": i_to, "issuer_key": _point(key_alg, raw[k:k + KEY], "issuer"),
        "user_id": user_id, "user_alg": user_alg, "user_from": u_from, "user_to": u_to,
        "user_key": _point(user_alg, raw[u:u + KEY], "user"),
        "generated": generated, "counter": counter, "product": product,
        "issuer_cert": raw[1:USER_AT], "user_cert": raw[USER_AT:DYNAMIC_AT],
        "signed": raw[:SIGNED], "signature": raw[SIGNED:],
    }


def verify_signature(alg, key, message, signature):
    """An SM2-with-SM3 or ECDSA-P256-SHA256 signature (key: bytes X||Y or an ecc.FixedKey); False if bad."""
    if alg == ALG_SM2:
        return ecc.verify_sm2(key, message, signature)
    if alg == ALG_P256:
        return ecc.verify_p256(key, message, signature)
    return False


def token(fields):
    """The record's credential token of a rider: SHA-256("zf ride" || issuer u16 || user id)[0:16] (keyless:
    the user id is the platform's opaque account reference, not a card number)."""
    return hashlib.sha256(b"zf ride" + struct.pack(">H", fields["issuer"]) + fields["user_id"]).digest()[:16]


def _in_window(now, start, end):
    return start <= now < end


class Verifier:
    """Checks codes against trusted roots {root id: (alg, key bytes or FixedKey)} and revoked issuer keys
    {(issuer, key id)}; remembers up to MAX_ISSUERS verified issuer certificates."""

    def __init__(self, roots, revoked=()):
        self.roots = roots
        self.revoked = set(revoked)
        self._issuers = []  # (issuer certificate bytes, prepared issuer key), newest last
        self._users = []  # SHA-256[:16] of user certificates verified under a remembered issuer, newest last

    def _issuer_key(self, fields):
        """The key of a verified issuer certificate, or the verdict that refuses it.  A new issuer's key is
        used as it is (a NAF verify, little heap) and queued for its comb table, which prepare_pending()
        builds when the terminal is idle; certificates of one key share it, so RAM is per issuer key."""
        cert = fields["issuer_cert"]
        for known, key in self._issuers:
            if known == cert:
                return key
        root = self.roots.get(fields["root"])
        if root is None:
            return UNKNOWN_ROOT
        if root[0] != fields["alg"] or not verify_signature(root[0], root[1], cert[:-SIG], cert[-SIG:]):
            return ISSUER_SIGNATURE
        curve = CURVES[fields["issuer_alg"]]
        raw = bytes(fields["issuer_key"])
        key = None
        for _, known in self._issuers:
            if known.curve is curve and known.x.to_bytes(32, "big") + known.y.to_bytes(32, "big") == raw:
                key = known
        if len(self._issuers) >= MAX_ISSUERS:
            self._issuers.pop(0)
        if key is None:
            key = ecc.public_key(curve, raw)
            if key is None:
                return ISSUER_SIGNATURE
        self._issuers.append((bytes(cert), key))
        return key

    def prepare_pending(self):
        """Build the comb table of one remembered issuer key that has none (~20 KB of heap for a moment,
        ~5 KB kept): call it while no passenger waits.  True when one was built, False when none waits;
        MemoryError propagates (the caller tries again later, verifies meanwhile take the NAF path)."""
        for _, key in self._issuers:
            if not isinstance(key, ecc.FixedKey):
                gc.collect()
                fixed = ecc.prepared(key)
                self._issuers = [(c, fixed if k is key else k) for c, k in self._issuers]
                return True
        return False

    def check_fields(self, fields, now, used=()):
        """OK or the first reason that refuses decoded `fields` at board time `now` (None: no clock);
        `used`: the (user id, counter) pairs already accepted."""
        if now is None:
            return NO_CLOCK
        if fields["root"] not in self.roots:
            return UNKNOWN_ROOT
        if (fields["issuer"], fields["issuer_key_id"]) in self.revoked:
            return ISSUER_REVOKED
        key = self._issuer_key(fields)
        if isinstance(key, str):
            return key
        if not _in_window(now, fields["issuer_from"], fields["issuer_to"]):
            return ISSUER_EXPIRED
        cert = fields["user_cert"]
        seen = hashlib.sha256(bytes(fields["issuer_cert"]) + bytes(cert)).digest()[:16]
        if seen not in self._users:
            if not verify_signature(fields["issuer_alg"], key, cert[:-SIG], cert[-SIG:]):
                return USER_SIGNATURE
            self._users.append(seen)
            if len(self._users) > MAX_USERS:
                self._users.pop(0)
        if not _in_window(now, fields["user_from"], fields["user_to"]):
            return USER_EXPIRED
        if not verify_signature(fields["user_alg"], fields["user_key"], fields["signed"], fields["signature"]):
            return CODE_SIGNATURE
        age = now - fields["generated"]
        if age > WINDOW:
            return TOO_OLD
        if -age > SKEW:
            return FUTURE
        if (fields["user_id"], fields["counter"]) in used:
            return ALREADY_USED
        return OK

    def check(self, text, now, used=()):
        """(verdict, fields or None) for a code's text: never raises."""
        try:
            fields = decode(text)
        except RideCodeError:
            return MALFORMED, None
        return self.check_fields(fields, now, used), fields


def verify(text, roots, now, revoked=(), used=()):
    """The verdict on one code (OK or a reason): a Verifier used once."""
    return Verifier(roots, revoked).check(text, now, used)[0]


# -- root keys file (/flash/keys/ride-roots) -----------------------------------------------------------


def root_line(root_id, alg, key):
    return "root %d %s %s" % (root_id, ALG_NAMES[alg], binascii.hexlify(bytes(key)).decode())


def parse_root_line(line):
    """(root id, alg, key bytes) of "root <id> sm2|p256 <128 hex digits>"; None for a comment or blank line;
    raises RideCodeError(MALFORMED) for anything else."""
    parts = line.split()
    if not parts or parts[0].startswith("#"):
        return None
    try:
        if len(parts) != 4 or parts[0] != "root" or len(parts[3]) != 2 * KEY:
            raise ValueError
        root_id = int(parts[1])
        alg = {"sm2": ALG_SM2, "p256": ALG_P256}[parts[2]]
        key = binascii.unhexlify(parts[3])
    except (ValueError, KeyError):
        raise RideCodeError(MALFORMED, "not a root line")
    if not 0 <= root_id <= 255:
        raise RideCodeError(MALFORMED, "root id out of range")
    _point(alg, key, "root")
    return root_id, alg, key
