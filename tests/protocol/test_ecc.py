"""protocol/ecc.py on both runtimes: the published SM2 and P-256 examples verify; signatures made by
independent implementations (gmssl for SM2, python-ecdsa and cryptography for P-256) with random keys
and messages verify, with and without a prepared key, and every corruption of them does not;
malformed keys and signatures return False and never raise."""

import hashlib
import os
import random

import ecdsa
import pytest
import realworld
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from gmssl import sm2 as gm_sm2
from hypothesis import given, settings
from hypothesis import strategies as st

SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
SM2_A = SM2_P - 3
SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
SM2_G = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7" \
        "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# GM/T 0003.5-2012 (GB/T 32918.5-2016) Annex A: the recommended curve, default id, message "message digest"
GMT_KEY = bytes.fromhex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                        "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
GMT_SIG = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
GMT_Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"

# RFC 6979 A.2.5: P-256, SHA-256
RFC_KEY = bytes.fromhex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
                        "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
RFC_SIGS = {
    b"sample": bytes.fromhex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
                             "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"),
    b"test": bytes.fromhex("F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
                           "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"),
}


def body_verify(cases):
    """[verify with the key, verify with a prepared key] for (alg, key, message, signature, uid).
    One prepared key at a time, as the heap of a board would hold a few."""
    from protocol import ecc

    last, fixed = None, None
    out = []
    for alg, key, message, signature, uid in cases:
        curve = ecc.SM2 if alg == "sm2" else ecc.P256
        if last != (alg, key):
            fixed = None
            last, fixed = (alg, key), ecc.prepare_key(curve, key)
        if alg == "sm2":
            if uid is None:
                got = [ecc.verify_sm2(key, message, signature), ecc.verify_sm2(fixed, message, signature)]
            else:
                got = [ecc.verify_sm2(key, message, signature, uid), ecc.verify_sm2(fixed, message, signature, uid)]
        else:
            got = [ecc.verify_p256(key, message, signature), ecc.verify_p256(fixed, message, signature)]
        out.append(got)
    return out


def body_malformed(cases):
    """What each verify says for inputs that are not a key, a signature, a message or an id."""
    from protocol import ecc

    out = []
    for key, message, signature, uid in cases:
        out.append([ecc.verify_sm2(key, message, signature, uid), ecc.verify_p256(key, message, signature)])
    return out


def body_prepare(keys):
    from protocol import ecc

    return [[ecc.prepare_key(ecc.SM2, k) is not None, ecc.prepare_key(ecc.P256, k) is not None] for k in keys]


def body_sm2_z(key, uid):
    from protocol import ecc

    return [ecc.sm2_z(key, uid), ecc.sm2_z(ecc.prepare_key(ecc.SM2, key), uid)]


def body_wrong_curve_key(sm2_key, p256_key, message, signature):
    from protocol import ecc

    return [ecc.verify_sm2(ecc.prepare_key(ecc.P256, p256_key), message, signature),
            ecc.verify_p256(ecc.prepare_key(ecc.SM2, sm2_key), message, signature),
            ecc.verify_sm2(ecc.prepare_key(ecc.SM2, sm2_key), message, signature)]


# ---------------------------------------------------------------------------------------------------
# References


def sm3(data):
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def sm2_z(key, uid):
    """Z computed here with OpenSSL's SM3, independently of protocol/ecc.py."""
    data = (len(uid) * 8).to_bytes(2, "big") + uid + SM2_A.to_bytes(32, "big") + SM2_B.to_bytes(32, "big")
    return sm3(data + bytes.fromhex(SM2_G) + key)


class Sm2Signer:
    """An SM2 key pair signing with gmssl (its own curve arithmetic); Z and e by OpenSSL's SM3."""

    def __init__(self, rng):
        d = rng.randrange(1, SM2_N - 1)
        probe = gm_sm2.CryptSM2(private_key="%064x" % d, public_key="")
        public = probe._kg(d, SM2_G)
        self.gm = gm_sm2.CryptSM2(private_key="%064x" % d, public_key=public)
        self.public = bytes.fromhex(public)
        self.rng = rng

    def sign(self, message, uid=b"1234567812345678"):
        e = sm3(sm2_z(self.public, uid) + message)
        while True:
            sig = self.gm.sign(e, "%064x" % self.rng.randrange(1, SM2_N))
            if sig is not None:
                return bytes.fromhex(sig)


def der(r, s):
    def integer(v):
        raw = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def raw_rs(signature):
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")


def flip(data, bit):
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def corruptions(alg, key, message, signature, uid, rng):
    """Cases that must all fail: one bit of r, s, message or key flipped; r = 0; s = n; r + s = n."""
    n = SM2_N if alg == "sm2" else P256_N
    r, s = raw_rs(signature)
    off_curve = flip(key, 511)  # y changed: no longer on the curve
    return [
        (alg, key, message, flip(signature, rng.randrange(256)), uid),  # r
        (alg, key, message, flip(signature, 256 + rng.randrange(256)), uid),  # s
        (alg, key, flip(message, rng.randrange(8 * len(message))), signature, uid),
        (alg, off_curve, message, signature, uid),
        (alg, key, message, bytes(32) + signature[32:], uid),  # r = 0
        (alg, key, message, signature[:32] + n.to_bytes(32, "big"), uid),  # s = n
        (alg, key, message, signature[:32] + ((n - r) % n).to_bytes(32, "big"), uid),  # r + s = n
        (alg, key, message, der(r, s)[:-1], uid),  # DER cut short
    ]


def p256_cases(count, rng):
    """Signatures by python-ecdsa and by cryptography (DER and raw), each followed by its corruptions:
    one batch of cases per signature."""
    groups = []
    signers = [ecdsa.SigningKey.generate(ecdsa.NIST256p, hashfunc=hashlib.sha256) for _ in range(2)]
    openssl = ec.generate_private_key(ec.SECP256R1())
    openssl_key = openssl.public_key().public_numbers()
    openssl_raw = openssl_key.x.to_bytes(32, "big") + openssl_key.y.to_bytes(32, "big")
    for i in range(count):
        message = os.urandom(1 + rng.randrange(100))
        if i % 3 == 2:
            r, s = decode_dss_signature(openssl.sign(message, ec.ECDSA(hashes.SHA256())))
            key, signature = openssl_raw, r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signer = signers[i % 3]
            key = signer.get_verifying_key().to_string()
            signature = signer.sign(message, sigencode=ecdsa.util.sigencode_string)
            if i % 2:
                key = b"\x04" + key
        cases = [("p256", key, message, der(*raw_rs(signature)) if i % 2 else signature, None)]
        groups.append(cases + corruptions("p256", key[-64:], message, signature, None, rng))
    return groups


def sm2_cases(count, rng):
    """Signatures by gmssl, default and other user ids, each followed by its corruptions and a wrong id:
    one batch of cases per signature."""
    groups = []
    signers = [Sm2Signer(rng) for _ in range(2)]
    for i in range(count):
        signer = signers[i % 2]
        message = os.urandom(1 + rng.randrange(100))
        uid = None if i % 3 == 0 else os.urandom(1 + rng.randrange(40))
        signature = signer.sign(message, b"1234567812345678" if uid is None else uid)
        key = b"\x04" + signer.public if i % 2 else signer.public
        cases = [("sm2", key, message, der(*raw_rs(signature)) if i % 4 == 1 else signature, uid)]
        cases += corruptions("sm2", signer.public, message, signature, uid, rng)
        cases.append(("sm2", key, message, signature, b"1234567812345679" if uid is None else uid + b"!"))
        groups.append(cases)
    return groups


def check(runtime, groups):
    """The first case of each batch verifies (with the key and prepared), none of the others does."""
    flat = [case for cases in groups for case in cases]
    want = [[True, True] if i == 0 else [False, False] for cases in groups for i in range(len(cases))]
    assert runtime.run_many(body_verify, [([case],) for case in flat]) == [[w] for w in want]


# ---------------------------------------------------------------------------------------------------
# Published examples


def test_gmt_0003_recommended_curve_example(runtime):
    message = b"message digest"
    cases = [
        ("sm2", GMT_KEY, message, GMT_SIG, None),
        ("sm2", b"\x04" + GMT_KEY, message, der(*raw_rs(GMT_SIG)), b"1234567812345678"),
        ("sm2", GMT_KEY, message, GMT_SIG, b"ALICE123@YAHOO.COM"),  # another id: another Z
        ("sm2", GMT_KEY, message + b".", GMT_SIG, None),
    ]
    assert runtime.run(body_verify, cases) == [[True, True], [True, True], [False, False], [False, False]]


def test_gmt_0003_z_value(runtime):
    z = bytes.fromhex(GMT_Z)
    assert runtime.run(body_sm2_z, GMT_KEY, b"1234567812345678") == [z, z]
    assert sm2_z(GMT_KEY, b"1234567812345678") == z


def test_rfc6979_p256_examples(runtime):
    cases = [("p256", RFC_KEY, m, sig, None) for m, sig in RFC_SIGS.items()]
    cases += [("p256", RFC_KEY, b"sample", RFC_SIGS[b"test"], None)]
    assert runtime.run(body_verify, cases) == [[True, True], [True, True], [False, False]]


@pytest.mark.skipif(realworld.DIR is None, reason=realworld.ABSENT)
def test_realworld_vectors(runtime):
    """crypto.json: SM2 on the recommended curve (the Annex A examples on the older test curve use
    a != -3, a curve no terminal meets), RFC 6979 and NIST CAVP SigVer P-256 / SHA-256."""
    vectors = realworld.load("crypto.json")
    cases, want = [], []
    for v in vectors["sm2_sign"]:
        if v["curve_params"]["p"].upper() != "%064X" % SM2_P:
            continue
        key = bytes.fromhex(v["public_key"]["x"] + v["public_key"]["y"])
        uid = v["user_id"].encode()
        if "wrong user ID" in v["name"]:  # signed under the default id, checked under this one
            assert uid != b"1234567812345678"
        cases.append(("sm2", key, bytes.fromhex(v["message_hex"]), bytes.fromhex(v["r"] + v["s"]), uid))
        want.append([v["expected_valid"]] * 2)
    for v in vectors["ecdsa_p256_rfc6979"]:
        cases.append(("p256", bytes.fromhex(v["Qx"] + v["Qy"]), v["message"].encode(),
                      bytes.fromhex(v["r"] + v["s"]), None))
        want.append([v["expected_valid"]] * 2)
    for v in vectors["ecdsa_p256_cavp_sigver"]:
        key = bytes.fromhex(v["Qx"].rjust(64, "0") + v["Qy"].rjust(64, "0"))
        sig = bytes.fromhex(v["R"].rjust(64, "0") + v["S"].rjust(64, "0"))
        cases.append(("p256", key, bytes.fromhex(v["Msg"]), sig, None))
        want.append([v["expected_valid"]] * 2)
    assert len(cases) >= 10
    assert runtime.run(body_verify, cases) == want


# ---------------------------------------------------------------------------------------------------
# Independent implementations, random keys and messages


def test_gmssl_signatures(runtime):
    check(runtime, sm2_cases(8, random.Random(os.urandom(8))))


def test_ecdsa_and_openssl_signatures(runtime):
    check(runtime, p256_cases(12, random.Random(os.urandom(8))))


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.binary(min_size=1, max_size=200))
def test_random_p256_on_cpython(rng, message):
    from protocol import ecc

    d = rng.randrange(1, P256_N)
    signer = ecdsa.SigningKey.from_secret_exponent(d, ecdsa.NIST256p, hashfunc=hashlib.sha256)
    key = signer.get_verifying_key().to_string()
    sig = signer.sign(message, k=rng.randrange(1, P256_N), sigencode=ecdsa.util.sigencode_der)
    assert ecc.verify_p256(key, message, sig)
    assert not ecc.verify_p256(key, flip(message, rng.randrange(8 * len(message))), sig)


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False), st.binary(min_size=1, max_size=200), st.binary(max_size=40))
def test_random_sm2_on_cpython(rng, message, uid):
    from protocol import ecc

    signer = Sm2Signer(rng)
    sig = signer.sign(message, uid)
    assert ecc.verify_sm2(signer.public, message, sig, uid)
    assert not ecc.verify_sm2(signer.public, message, flip(sig, rng.randrange(512)), uid)


# ---------------------------------------------------------------------------------------------------
# Malformed input


def test_malformed_inputs_return_false(runtime):
    good_key, message = GMT_KEY, b"message digest"
    r, s = raw_rs(GMT_SIG)
    d = der(r, s)
    cases = [
        (bytes(64), message, GMT_SIG, b"1"),  # the point at infinity has no affine encoding
        (good_key[:-1], message, GMT_SIG, b"1"),  # short key
        (b"\x02" + good_key, message, GMT_SIG, b"1"),  # 65 bytes, not uncompressed
        (b"\x04" + good_key + b"\x00", message, GMT_SIG, b"1"),  # 66 bytes
        (SM2_P.to_bytes(32, "big") + good_key[32:], message, GMT_SIG, b"1"),  # x = p
        (good_key, message, GMT_SIG[:-1], b"1"),  # 63-byte signature, not DER
        (good_key, message, b"", b"1"),
        (good_key, message, b"\x31" + d[1:], b"1"),  # not a SEQUENCE
        (good_key, message, d + b"\x00", b"1"),  # trailing byte
        (good_key, message, d[:1] + bytes([d[1] + 1]) + d[2:] + b"\x00", b"1"),  # trailing INTEGER space
        (good_key, message, b"\x30\x06\x02\x01\x00\x02\x01\x01", b"1"),  # r = 0
        (good_key, message, b"\x30\x07\x02\x02\x00\x01\x02\x01\x01", b"1"),  # non-minimal INTEGER
        (good_key, message, b"\x30\x06\x02\x01\x81\x02\x01\x01", b"1"),  # negative INTEGER
        (good_key, message, b"\x30\x06\x02\x00\x02\x02\x01\x01", b"1"),  # empty INTEGER
        (good_key, message, b"\x30\x81\x06\x02\x01\x01\x02\x01\x01", b"1"),  # long-form length
        (good_key, message, b"\x30\x06\x02\x09\x01\x02\x01\x01", b"1"),  # INTEGER past the end
        (good_key, message, b"\x30", b"1"),
        (good_key, message, der(r, SM2_N), b"1"),  # s = n
        (good_key, message, der(SM2_N + r, s), b"1"),  # r >= n
        (None, message, GMT_SIG, b"1"),
        ("04" + good_key.hex(), message, GMT_SIG, b"1"),
        (good_key, "message digest", GMT_SIG, b"1"),
        (good_key, message, 12345, b"1"),
        (good_key, message, GMT_SIG.hex(), b"1"),
        (good_key, None, GMT_SIG, b"1"),
        (good_key, message, GMT_SIG, "1234567812345678"),  # uid must be bytes
        (good_key, message, GMT_SIG, None),
        (good_key, message, GMT_SIG, bytes(8192)),  # longer than ENTL can say
        (good_key, message, [1, 2], [3]),
    ]
    assert runtime.run(body_malformed, cases) == [[False, False]] * len(cases)


def test_prepare_key_refuses_what_is_not_a_point(runtime):
    keys = [GMT_KEY, b"\x04" + GMT_KEY, RFC_KEY, bytes(64), GMT_KEY[:63] + b"\x00", b"", "key"]
    got = runtime.run(body_prepare, keys)
    assert got == [[True, False], [True, False], [False, True], [False, False], [False, False],
                   [False, False], [False, False]]


def test_a_key_prepared_for_one_curve_is_refused_by_the_other(runtime):
    got = runtime.run(body_wrong_curve_key, GMT_KEY, RFC_KEY, b"message digest", GMT_SIG)
    assert got == [False, False, True]
