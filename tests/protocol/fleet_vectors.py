"""Writes protocol/vectors/fleet.json, the fleet config bundles' golden vectors (SPEC.md "Config bundles").

    /work/main/.venv/bin/python tests/protocol/fleet_vectors.py      # rewrite the file

The config keys are test keys made from fixed seeds (deterministic primes), and PKCS#1 v1.5
signatures are deterministic, so the file only changes when the format does.  The tests check the
committed file on both runtimes and never regenerate it.  Bytes and moduli are hex in JSON.
"""

import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from host_sim.tools import bundle  # noqa: E402
from protocol import fleet  # noqa: E402

PATH = os.path.join(ROOT, "protocol", "vectors", "fleet.json")
ISSUED = 1_800_000_000


def _probable_prime(n, rng):
    if n % 2 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng):
    while True:
        p = rng.getrandbits(1024) | (3 << 1022) | 1
        if p % 65537 != 1 and _probable_prime(p, rng):
            return p


def vector_key(seed):
    """A deterministic RSA-2048 key for vectors only (never a real authority key)."""
    rng = random.Random(seed)
    p, q = _prime(rng), _prime(rng)
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    nums = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q))
    return nums.private_key()


def signed(key, kind, kid, version, body):
    return bundle.sign(key, kid, kind, version, body, issued=ISSUED)


def n_of(key):
    return key.public_key().public_numbers().n


def vectors():
    authority, other, issuer = vector_key("zf config 1"), vector_key("zf config 2"), vector_key("zf ticket issuer")
    fares = signed(authority, fleet.KIND_FARES, 1, 7, bundle.fares_body({1: 250, 3: 300}))
    keys_body = bundle.ticket_keys_body([(7, 1, n_of(issuer))], [(7, 0)], [(7, b"LOSTPASS")])
    keys = signed(authority, fleet.KIND_TICKET_KEYS, 1, 3, keys_body)
    tampered = bytearray(fares)
    tampered[fleet.HEAD + 3] ^= 0x01
    dup = signed(authority, fleet.KIND_FARES, 1, 8, b"\x02\x01\x00\x00\x00\x01\x01\x00\x00\x00\x02")
    return {
        "spec": "protocol/SPEC.md, Config bundles: fleet bundles",
        "config_keys": ["key 0 1 %0512x" % n_of(authority)],
        "valid": [
            {"name": "fares v7: QR 2.50, EMV 3.00", "bundle": fares.hex(), "kind": 3, "key_id": 1, "version": 7,
             "issued": ISSUED, "fares": {"1": 250, "3": 300}},
            {"name": "ticket keys v3: one key, key 7/0 revoked, ticket LOSTPASS revoked", "bundle": keys.hex(),
             "kind": 2, "key_id": 1, "version": 3, "issued": ISSUED,
             "keys": [[7, 1, "%0512x" % n_of(issuer)]], "revoked": [[7, 0]], "tickets": [[7, b"LOSTPASS".hex()]]},
        ],
        "invalid": [
            {"name": "one body bit flipped", "bundle": bytes(tampered).hex(), "error": "bad signature"},
            {"name": "signed by another key with the same key id",
             "bundle": signed(other, fleet.KIND_FARES, 1, 7, bundle.fares_body({1: 1})).hex(),
             "error": "bad signature"},
            {"name": "signed by an unknown key id",
             "bundle": signed(other, fleet.KIND_FARES, 2, 7, bundle.fares_body({1: 1})).hex(),
             "error": "no config key 2"},
            {"name": "truncated signature", "bundle": fares[:-1].hex(), "error": "header says"},
            {"name": "bad magic", "bundle": (b"ZFB2" + fares[4:]).hex(), "error": "not a fleet bundle"},
            {"name": "unknown kind", "bundle": (fares[:4] + b"\x09" + fares[5:]).hex(), "error": "kind 9 unknown"},
            {"name": "fare for a credential kind twice", "bundle": dup.hex(), "error": "twice"},
        ],
    }


if __name__ == "__main__":
    with open(PATH, "w") as f:
        json.dump(vectors(), f, indent=1)
        f.write("\n")
    print("wrote " + PATH)
