"""protocol/vectors/primitives.json on both runtimes: the building blocks SPEC.md sections 1-5 pin down
(COBS at 254-byte runs, the KDF counter, the AES-CTR block counter, the SACK bitmap's place in a
secured frame, the byte order of every body, max_frame to payload) give exactly the committed bytes."""

import json
import os

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "primitives.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


def body_cobs(vectors, invalid):
    import binascii

    from protocol import cobs

    out = []
    for v in vectors:
        data = binascii.unhexlify(v["data"])
        enc = binascii.unhexlify(v["cobs"])
        encoded = None if v.get("decode_only") else binascii.hexlify(cobs.encode(data)).decode()
        out.append((encoded, cobs.decode(enc) == data))
    refused = []
    for v in invalid:
        try:
            cobs.decode(binascii.unhexlify(v["cobs"]))
            refused.append(False)
        except cobs.CobsError:
            refused.append(True)
    return out, refused


def body_kdf(vectors):
    import binascii

    from protocol import crypto

    out = []
    for v in vectors:
        key = binascii.unhexlify(v["key"])
        label = binascii.unhexlify(v["label"])
        blocks = [binascii.hexlify(crypto.hmac_sha256(key, label + bytes([c]))).decode()
                  for c in range(1, len(v["blocks"]) + 1)]
        out.append((blocks, binascii.hexlify(crypto.derive(key, label, v["length"])).decode()))
    return out


def body_ctr(vectors):
    import binascii

    from protocol import crypto

    out = []
    for v in vectors:
        key = binascii.unhexlify(v["key"])
        nonce = binascii.unhexlify(v["nonce"])
        n = len(v["keystream"]) // 2
        # the keystream is AES-ECB of the stated counter blocks: nonce || block u32 big-endian from 0
        ecb = crypto.aes_ctr(key, nonce, bytes(n))
        out.append((binascii.hexlify(ecb).decode(), v["frame_counter"] == int.from_bytes(nonce[:4], "little")))
    return out


def body_secured(v):
    import binascii

    from protocol import link, session

    key = binascii.unhexlify(v["key"])
    th = binascii.unhexlify(v["transcript"])
    clear = binascii.unhexlify(v["clear"])
    sealed = session.Session(key, session.ROLE_TERMINAL, th).seal(clear)
    opened = session.Session(key, session.ROLE_HOST, th).open(binascii.unhexlify(v["payload"]))
    mtype, flags, seq, ack, sack, hs = link.unpack_header(sealed)
    return binascii.hexlify(sealed).decode(), opened == clear, hs, sack


def body_byte_order(vectors):
    import binascii

    from protocol import link

    out = []
    for v in vectors:
        msg = link.decode(binascii.unhexlify(v["payload"]), binascii.unhexlify("5a46000000000107"))
        out.append({k: (binascii.hexlify(msg[k]).decode() if isinstance(msg[k], bytes) else msg[k])
                    for k in msg if k != "records"})
    return out


def body_max_payload(sizes):
    from protocol import link

    return [link.max_payload(n) for n in sizes]


def test_cobs_at_254_byte_runs(runtime):
    v = load()
    got, refused = runtime.run(body_cobs, v["cobs"], v["cobs_invalid"])
    for vector, (encoded, decoded) in zip(v["cobs"], got):
        if not vector.get("decode_only"):
            assert encoded == vector["cobs"], vector["name"]
        assert decoded, vector["name"]
    assert refused == [True] * len(v["cobs_invalid"])
    full = [x for x in v["cobs"] if x["name"].startswith("254 non-zero bytes: a full block")][0]
    assert full["cobs"].startswith("ff") and full["cobs"].endswith("01") and len(full["cobs"]) == 2 * 256


def test_key_derivation_counter_is_one_byte_from_one(runtime):
    v = load()["kdf"]
    got = runtime.run(body_kdf, v)
    for vector, (blocks, output) in zip(v, got):
        assert blocks == vector["blocks"]
        assert output == vector["output"] == "".join(vector["blocks"])[:2 * vector["length"]]


def test_aes_ctr_block_counter_is_big_endian_from_zero(runtime):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    v = load()["aes_ctr"]
    for vector in v:
        # an independent AES: ECB over the counter blocks as the vector states them
        enc = Cipher(algorithms.AES(bytes.fromhex(vector["key"])), modes.ECB()).encryptor()
        stream = b"".join(enc.update(bytes.fromhex(b)) for b in vector["counter_blocks"])
        assert stream[:len(vector["keystream"]) // 2].hex() == vector["keystream"]
        assert vector["counter_blocks"][1].endswith("00000001")
    got = runtime.run(body_ctr, v)
    assert got == [(x["keystream"], True) for x in v]


def test_sack_bitmap_sits_in_the_clear_header_of_a_secured_frame(runtime):
    v = load()["secured_with_sack"]
    sealed, opened, body_at, sack = runtime.run(body_secured, v)
    assert sealed == v["payload"] == v["header"] + v["sack"] + v["counter"] + v["ciphertext"] + v["mac"]
    assert opened and body_at == 23 and sack == (1 << 0) | (1 << 127)
    assert v["counter"] == "01000000"


def test_every_body_is_little_endian(runtime):
    v = load()["byte_order"]
    got = runtime.run(body_byte_order, v)
    assert got == [x["message"] for x in v]
    by = {x["name"]: x for x in v}
    assert by["time"]["message"]["unix_ms"] == 0x0102030405060708
    assert by["time"]["payload"].endswith("04030201" + "0807060504030201" + "0c0b0a09")
    assert by["status"]["payload"][14:22] == "04030201"


def test_max_payload_follows_from_max_frame(runtime):
    v = load()["max_payload"]
    assert runtime.run(body_max_payload, [n for n, _ in v]) == [p for _, p in v]
