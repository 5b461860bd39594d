"""The ride-code platform's side, for tests and demos: root, issuer and rider keys, certificates, codes.

Test keys are derived from their names (SHA-256 of a label, reduced into [1, n-1]), so every checkout
issues the same certificates and the golden vectors (protocol/vectors/ridecode.json) never change.
Signing is deterministic too: ECDSA P-256 by RFC 6979 (python-ecdsa), SM2 by gmssl with its nonce k
derived from the private key and the message digest.  The terminal gets only the roots' public halves
(`root_line`, /flash/keys/ride-roots).
"""

import hashlib

import ecdsa
from cryptography.hazmat.primitives import hashes
from gmssl import sm2 as gm_sm2

from protocol import ecc, ridecode

ROOT_IDS = {ridecode.ALG_SM2: 1, ridecode.ALG_P256: 2}  # the test roots' ids, one per algorithm
ISSUERS = {ridecode.ALG_SM2: 11, ridecode.ALG_P256: 12}  # the test issuers (platforms), one per algorithm
ISSUER_VALID = (1704067200, 2082758400)  # the test issuer certificates: 2024-01-01 .. 2036-01-01
REVOKED_KEY_ID = 2  # the test issuers' key id that `qr make ride --revoked` uses and `qr decode` treats as revoked
TEST_REVOKED = {(ISSUERS[ridecode.ALG_SM2], REVOKED_KEY_ID), (ISSUERS[ridecode.ALG_P256], REVOKED_KEY_ID)}
SM2_G = "%064x%064x" % (ecc.SM2.gx, ecc.SM2.gy)
DEFAULT_UID = b"1234567812345678"


def _sm3(data):
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class Key:
    """A private key of ridecode.ALG_SM2 or ALG_P256; `public` is X||Y (64 bytes)."""

    def __init__(self, alg, d):
        self.alg = alg
        self.d = d
        if alg == ridecode.ALG_P256:
            self._sk = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p, hashfunc=hashlib.sha256)
            self.public = self._sk.get_verifying_key().to_string()
        else:
            probe = gm_sm2.CryptSM2(private_key="%064x" % d, public_key="")
            public = probe._kg(d, SM2_G)
            self._gm = gm_sm2.CryptSM2(private_key="%064x" % d, public_key=public)
            self.public = bytes.fromhex(public)

    def sign(self, message):
        """64 bytes r||s."""
        if self.alg == ridecode.ALG_P256:
            return self._sk.sign_deterministic(message, hashfunc=hashlib.sha256,
                                               sigencode=ecdsa.util.sigencode_string)
        curve = ecc.SM2
        z = _sm3((len(DEFAULT_UID) * 8).to_bytes(2, "big") + DEFAULT_UID
                 + b"".join(v.to_bytes(32, "big") for v in (curve.p - 3, curve.b, curve.gx, curve.gy))
                 + self.public)
        e = _sm3(z + bytes(message))
        seed = self.d.to_bytes(32, "big") + e
        while True:
            seed = hashlib.sha256(seed).digest()
            k = int.from_bytes(seed, "big") % (curve.n - 1) + 1
            sig = self._gm.sign(e, "%064x" % k)
            if sig is not None:
                return bytes.fromhex(sig)


def test_key(label, alg):
    """The fixed test key named `label` for `alg`."""
    n = ridecode.CURVES[alg].n
    d = int.from_bytes(hashlib.sha256(b"zf ride test key " + label.encode()).digest(), "big") % (n - 1) + 1
    return Key(alg, d)


def root_key(alg, root_id=1):
    return test_key("root %d" % root_id, alg)


def issuer_key(alg, issuer=1, key_id=1):
    return test_key("issuer %d/%d" % (issuer, key_id), alg)


def user_key(alg, user_id):
    return test_key("user " + bytes(user_id).hex(), alg)


def issuer_cert(root, root_id, issuer, key_id, key, valid_from, valid_to):
    body = ridecode.issuer_cert_body(root_id, root.alg, issuer, key_id, key.alg, valid_from, valid_to, key.public)
    return body + root.sign(body)


def user_cert(issuer_signer, issuer, key_id, user_id, key, valid_from, valid_to):
    body = ridecode.user_cert_body(issuer, key_id, user_id, key.alg, valid_from, valid_to, key.public)
    return body + issuer_signer.sign(body)


def issue(alg, now, user_id=b"RIDER001", counter=1, product=1, generated=None, root_id=None, issuer=None, key_id=1,
          issuer_from=None, issuer_to=None, user_from=None, user_to=None, root=None):
    """The QR text of a code made at `generated` (default `now`) under the fixed test chain of `alg`
    (root ROOT_IDS[alg], issuer ISSUERS[alg] unless given; the root may be another key: `root`).
    The issuer certificate runs ISSUER_VALID unless given (the same certificate in every code, as a
    platform's is), the user certificate a year around `now`."""
    year = 365 * 86400
    root_id = ROOT_IDS[alg] if root_id is None else root_id
    issuer = ISSUERS[alg] if issuer is None else issuer
    root = root or root_key(alg, root_id)
    ikey = issuer_key(alg, issuer, key_id)
    ukey = user_key(alg, user_id)
    icert = issuer_cert(root, root_id, issuer, key_id, ikey, ISSUER_VALID[0] if issuer_from is None else issuer_from,
                        ISSUER_VALID[1] if issuer_to is None else issuer_to)
    ucert = user_cert(ikey, issuer, key_id, user_id, ukey, now - year if user_from is None else user_from,
                      now + year if user_to is None else user_to)
    signed = ridecode.code_body(icert, ucert, now if generated is None else generated, counter, product)
    return ridecode.encode(signed, ukey.sign(signed))


def root_lines(algs=(ridecode.ALG_SM2, ridecode.ALG_P256)):
    """The /flash/keys/ride-roots text trusting the test roots: root id 1 for SM2, 2 for P-256."""
    return "".join(ridecode.root_line(ROOT_IDS[alg], alg, root_key(alg, ROOT_IDS[alg]).public) + "\n"
                   for alg in algs)


