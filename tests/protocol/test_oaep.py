"""protocol/oaep.py on both runtimes: what the terminal encrypts, `cryptography` (the host's RSA-OAEP SHA-256
decrypt) opens, for any message length up to the limit; a wrong key does not open it; bad input is refused."""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import strategies as st
from runtimes import draw_examples

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def body_encrypt(cases, n):
    from protocol import oaep

    return [oaep.encrypt(message, n, seed) for message, seed in cases]


def body_refused(n):
    from protocol import oaep

    refused = []
    for message, seed in ((bytes(191), bytes(32)), (bytes(32), bytes(31)), (bytes(32), bytes(33))):
        try:
            oaep.encrypt(message, n, seed)
        except ValueError:
            refused.append(len(message))
    return refused


def test_the_host_decrypts_what_either_runtime_encrypts(runtime, key):
    n = key.public_key().public_numbers().n
    cases = draw_examples(st.tuples(st.binary(max_size=190), st.binary(min_size=32, max_size=32)), count=12)
    cases += [(bytes(range(32)), bytes(32)), (b"", bytes([0xFF]) * 32), (bytes(190), bytes(range(32)))]
    got = runtime.run(body_encrypt, cases, n)
    for (message, _), ciphertext in zip(cases, got):
        assert len(ciphertext) == 256
        assert key.decrypt(ciphertext, OAEP) == message
    assert len(set(got)) == len(set(cases))  # the seed randomises: one ciphertext per (message, seed)


def test_another_key_does_not_decrypt(key):
    from protocol import oaep

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ciphertext = oaep.encrypt(bytes(32), key.public_key().public_numbers().n, bytes(range(32)))
    with pytest.raises(ValueError):
        other.decrypt(ciphertext, OAEP)


def test_too_long_a_message_or_a_bad_seed_is_refused(runtime, key):
    assert runtime.run(body_refused, key.public_key().public_numbers().n) == [191, 32, 32]
