"""protocol/crypto.py against independent references (hmac, cryptography), on both runtimes."""

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import strategies as st
from runtimes import draw_examples


def body_hmac(key, msg):
    from protocol import crypto

    return crypto.hmac_sha256(key, msg)


def body_ctr(key, nonce, data):
    from protocol import crypto

    return crypto.aes_ctr(key, nonce, data)


def body_ctr_into(key, nonce, data):
    """aes_ctr_into into a separate buffer and in place, with one scratch buffer for both."""
    from protocol import crypto

    scratch = bytearray(len(data) + 16)
    out = bytearray(len(data))
    crypto.aes_ctr_into(key, nonce, data, out, scratch)
    same = bytearray(data)
    crypto.aes_ctr_into(key, nonce, same, same, scratch)
    return [bytes(out), bytes(same)]


def body_seal_round_trip(key, nonce, data, ad):
    from protocol import crypto

    sealed = crypto.seal(key, nonce, data, ad)
    assert crypto.unseal(key, sealed, ad) == data
    rejected = 0
    for i in range(len(sealed)):  # any altered byte is refused
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        try:
            crypto.unseal(key, bytes(bad), ad)
        except crypto.CryptoError:
            rejected += 1
    try:
        crypto.unseal(key, sealed, ad + b"x")
    except crypto.CryptoError:
        rejected += 1
    return sealed, rejected


def test_hmac_matches_the_standard_library(runtime):
    cases = draw_examples(st.tuples(st.binary(max_size=100), st.binary(max_size=300)), 40)
    cases.append((b"k" * 64, b"exact block"))
    got = runtime.run_many(body_hmac, cases)
    assert got == [hmac.new(k, m, hashlib.sha256).digest() for k, m in cases]


def test_rfc4231_case_2(runtime):
    assert runtime.run(body_hmac, b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@pytest.mark.parametrize("key_size", [16, 32])
def test_ctr_matches_a_reference_aes_ctr(runtime, key_size):
    cases = draw_examples(st.tuples(st.binary(min_size=key_size, max_size=key_size),
                                    st.binary(min_size=12, max_size=12), st.binary(max_size=200)), 25)
    got = runtime.run_many(body_ctr, cases)
    for (key, nonce, data), out in zip(cases, got):
        ref = Cipher(algorithms.AES(key), modes.CTR(nonce + bytes(4))).encryptor().update(data)
        assert out == ref


def test_ctr_into_a_buffer_or_in_place_matches_a_reference_aes_ctr(runtime):
    cases = draw_examples(st.tuples(st.binary(min_size=16, max_size=16), st.binary(min_size=12, max_size=12),
                                    st.binary(max_size=300)), 25)
    got = runtime.run_many(body_ctr_into, cases)
    for (key, nonce, data), (out, same) in zip(cases, got):
        ref = Cipher(algorithms.AES(key), modes.CTR(nonce + bytes(4))).encryptor().update(data)
        assert out == ref and same == ref


def test_seal_round_trips_and_refuses_any_alteration(runtime):
    key, nonce = bytes(range(32)), bytes(range(12))
    sealed, rejected = runtime.run(body_seal_round_trip, key, nonce, b"6212345678901234567", b"rec#1")
    assert b"6212345678901234567" not in sealed
    assert len(sealed) == 12 + 19 + 16
    assert rejected == len(sealed) + 1
