"""Writes protocol/vectors/ridecode.json, the ride codes' golden vectors (SPEC.md "Ride codes").

    .venv/bin/python tests/protocol/ridecode_vectors.py      # rewrite the file

Keys are the fixed test keys of host_sim/tools/ridecodes.py and signing is deterministic (RFC 6979
for P-256, a nonce derived from key and digest for SM2), so the file only changes when the format
does.  The tests check the committed file on both runtimes and never regenerate it.
"""

import binascii
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from host_sim.tools import ridecodes  # noqa: E402
from protocol import ecc, ridecode  # noqa: E402

PATH = os.path.join(ROOT, "protocol", "vectors", "ridecode.json")
NOW = 1_800_000_000
ALGS = {"sm2": ridecode.ALG_SM2, "p256": ridecode.ALG_P256}


def raw_of(text):
    b64 = text[4:].replace("-", "+").replace("_", "/")
    return bytearray(binascii.a2b_base64(b64 + "=" * (-len(b64) % 4)))


def text_of(raw):
    return ridecode.encode(bytes(raw[:ridecode.SIGNED]), bytes(raw[ridecode.SIGNED:]))


def corrupt(text, offset, value):
    raw = raw_of(text)
    raw[offset:offset + len(value)] = value
    return text_of(raw)


def case(name, code, verdict, now=NOW, revoked=(), used=()):
    return {"name": name, "code": code, "now": now, "revoked": [list(r) for r in revoked],
            "used": [[u.hex(), c] for u, c in used], "verdict": verdict}


def vectors():
    out = {"now": NOW, "roots": ridecodes.root_lines().splitlines(), "valid": [], "invalid": []}
    for name, alg in ALGS.items():
        code = ridecodes.issue(alg, NOW, user_id=b"RIDER001", counter=7, product=3, generated=NOW - 5,
                               issuer_from=NOW - 1000, issuer_to=NOW + 1000, user_from=NOW - 100, user_to=NOW + 100)
        issuer = ridecodes.ISSUERS[alg]
        out["valid"].append({"name": name, "code": code, "root": ridecodes.ROOT_IDS[alg], "alg": alg,
                             "issuer": issuer, "issuer_key_id": 1, "user_id": b"RIDER001".hex(), "counter": 7,
                             "product": 3, "generated": NOW - 5,
                             "token": ridecode.token({"issuer": issuer, "user_id": b"RIDER001"}).hex()})
        n = ridecode.CURVES[alg].n.to_bytes(32, "big")
        sig = ridecode.SIGNED
        user_key_y = ridecode.USER_AT + ridecode.USER_HEAD_SIZE + 63
        inv = out["invalid"]
        inv += [
            case(name + " fresh at the window's edge", code, ridecode.OK, now=NOW - 5 + ridecode.WINDOW),
            case(name + " too old", code, ridecode.TOO_OLD, now=NOW - 5 + ridecode.WINDOW + 1),
            case(name + " from the future", code, ridecode.FUTURE, now=NOW - 5 - ridecode.SKEW - 1),
            case(name + " no clock", code, ridecode.NO_CLOCK, now=None),
            case(name + " already used", code, ridecode.ALREADY_USED, used=[(b"RIDER001", 7)]),
            case(name + " another counter is not a replay", code, ridecode.OK, used=[(b"RIDER001", 6)]),
            case(name + " issuer revoked", code, ridecode.ISSUER_REVOKED, revoked=[(issuer, 1)]),
            case(name + " issuer certificate expired", code, ridecode.ISSUER_EXPIRED, now=NOW + 1000),
            case(name + " user certificate expired", code, ridecode.USER_EXPIRED, now=NOW + 100),
            case(name + " root unknown", corrupt(code, 1, b"\x09"), ridecode.UNKNOWN_ROOT),
            case(name + " issuer certificate by another root",
                 ridecodes.issue(alg, NOW, root=ridecodes.test_key("another root", alg)), ridecode.ISSUER_SIGNATURE),
            case(name + " issuer certificate altered", corrupt(code, 12, b"\xff"), ridecode.ISSUER_SIGNATURE),
            case(name + " user certificate altered", corrupt(code, ridecode.USER_AT + 5, b"X"),
                 ridecode.USER_SIGNATURE),
            case(name + " counter altered", corrupt(code, ridecode.DYNAMIC_AT + 7, b"\x08"), ridecode.CODE_SIGNATURE),
            case(name + " code signature r = 0", corrupt(code, sig, bytes(32)), ridecode.CODE_SIGNATURE),
            case(name + " code signature s = n", corrupt(code, sig + 32, n), ridecode.CODE_SIGNATURE),
            case(name + " user key off the curve", corrupt(code, user_key_y, bytes([raw_of(code)[user_key_y] ^ 1])),
                 ridecode.MALFORMED),
            case(name + " truncated", code[:-1], ridecode.MALFORMED),
            case(name + " oversized", code + "A", ridecode.MALFORMED),
            case(name + " version 2", corrupt(code, 0, b"\x02"), ridecode.MALFORMED),
            case(name + " algorithm 3", corrupt(code, 2, b"\x03"), ridecode.MALFORMED),
            case(name + " user certificate of another issuer", corrupt(code, ridecode.USER_AT, b"\x00\x63"),
                 ridecode.MALFORMED),
        ]
    out["invalid"] += [
        case("garbage after the prefix", "ZR1." + "!" * (ridecode.MAX_TEXT - 4), ridecode.MALFORMED),
        case("empty", "", ridecode.MALFORMED),
        case("prefix only", "ZR1.", ridecode.MALFORMED),
    ]
    assert ecc.SM2.n != ecc.P256.n
    return out


if __name__ == "__main__":
    with open(PATH, "w") as f:
        json.dump(vectors(), f, indent=1)
        f.write("\n")
    print("wrote " + PATH)
