"""protocol/rsa.py on both runtimes: signatures made by `cryptography` on the host verify with pow();
altered messages, signatures, other keys and impossible values do not; moduli are checked."""

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import strategies as st
from runtimes import draw_examples

from host_sim.tools import tickets


@pytest.fixture(scope="module")
def keys():
    return [tickets.generate_key() for _ in range(2)]


def sign(key, message):
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def modulus(key):
    return key.public_key().public_numbers().n


def body_verify(cases):
    import hashlib

    from protocol import rsa

    out = []
    for message, signature, n in cases:
        out.append([rsa.verify(message, signature, n),
                    rsa.verify_digest(hashlib.sha256(message).digest(), signature, n)])
    return out


def body_modulus(raws):
    from protocol import rsa

    return [rsa.modulus(raw) for raw in raws]


def test_host_signatures_verify_and_alterations_do_not(runtime, keys):
    msg = b"fleet bundle body"
    sig = sign(keys[0], msg)
    n0, n1 = modulus(keys[0]), modulus(keys[1])
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    cases = [
        (msg, sig, n0),  # good
        (msg + b"!", sig, n0),  # message altered
        (msg, flipped, n0),  # signature altered
        (msg, sig, n1),  # another key
        (msg, sig[:-1], n0),  # short signature
        (msg, n0.to_bytes(256, "big"), n0),  # s >= n
        (msg, bytes(256), n0),  # zero
    ]
    got = runtime.run(body_verify, cases)
    assert got == [[True, True]] + [[False, False]] * 6


def test_block_is_the_one_cryptography_signs(keys):
    from protocol import rsa

    msg = b"abc"
    sig = sign(keys[0], msg)
    pub = keys[0].public_key().public_numbers()
    assert pow(int.from_bytes(sig, "big"), pub.e, pub.n).to_bytes(256, "big") == \
        rsa.pkcs1_block(hashlib.sha256(msg).digest())
    assert rsa.E == pub.e


def test_modulus_accepts_only_2048_bit_odd(runtime, keys):
    good = modulus(keys[0]).to_bytes(256, "big")
    raws = [good, good[:-1], b"\x01" + good[1:], good[:-1] + bytes([good[-1] & 0xFE]), good + b"\x00"]
    assert runtime.run(body_modulus, raws) == [modulus(keys[0]), None, None, None, None]


def test_fuzz_random_signatures_never_verify(runtime, keys):
    n = modulus(keys[0])
    examples = draw_examples(st.tuples(st.binary(max_size=64), st.binary(min_size=250, max_size=260)))
    got = runtime.run_many(body_verify, [([(m, s, n)],) for m, s in examples])
    assert got == [[[False, False]]] * len(examples)
