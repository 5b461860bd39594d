"""Writes protocol/vectors/seal.json, the sealed card data's golden vectors (SPEC.md "Sealed card data").

    /work/main/.venv/bin/python tests/protocol/seal_vectors.py      # rewrite the file

The collector key is a test key made from a fixed seed (fleet_vectors.vector_key); the epoch key, the
OAEP seed, the terminal, token and card data are fixed, so every byte is determined.  The tests check the
committed file on both runtimes and never regenerate it.  Bytes and moduli are hex in JSON.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from fleet_vectors import vector_key  # noqa: E402

from host_sim.backend import sealing  # noqa: E402
from protocol import oaep, record, seal, tlv  # noqa: E402

PATH = os.path.join(ROOT, "protocol", "vectors", "seal.json")
TERMINAL = bytes.fromhex("5642000001000000")
TIME = 1_800_000_000
EPOCH_KEY = bytes(range(0x40, 0x60))
OAEP_SEED = bytes(range(0xA0, 0xC0))
KEY_ID = 41  # the sequence number of the epoch's first key record
TOKEN = bytes.fromhex("00112233445566778899aabbccddeeff")
CARD_DATA = (tlv.encode(0x5A, bytes.fromhex("6228480000000000018F")) + tlv.encode(0x5F24, bytes.fromhex("290531"))
             + tlv.encode(0x57, bytes.fromhex("6228480000000000018D29052010000000000F"))
             + tlv.encode(0x9F26, bytes.fromhex("1122334455667788")))


def key_record(seq, part):
    return record.encode(TERMINAL, seq, TIME, record.KIND_SEAL_KEY, 0, 0, 0, 0, 0, record.NO_TOKEN,
                         ((record.EXT_SEAL_KEY, part),))


def vectors():
    key = vector_key("zf seal collector 1")
    n = key.public_key().public_numbers().n
    wrapped = oaep.encrypt(EPOCH_KEY, n, OAEP_SEED)
    assert key.decrypt(wrapped, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)) == EPOCH_KEY
    fp = seal.fingerprint(n)
    parts = seal.key_parts(KEY_ID, fp, wrapped)
    sealed = [{"count": count, "token": TOKEN.hex(), "plaintext": CARD_DATA.hex(),
               "sealed": seal.seal_data(KEY_ID, EPOCH_KEY, count, CARD_DATA, TOKEN).hex()} for count in (0, 1, 255)]
    return {
        "spec": "protocol/SPEC.md, Sealed card data",
        "private_key_pem": sealing.private_pem(key).decode(),
        "modulus": "%0512x" % n,
        "fingerprint": fp.hex(),
        "epoch_key": EPOCH_KEY.hex(),
        "oaep_seed": OAEP_SEED.hex(),
        "wrapped": wrapped.hex(),
        "key_id": KEY_ID,
        "terminal": TERMINAL.hex(),
        "time": TIME,
        "key_parts": [p.hex() for p in parts],
        "key_records": [key_record(KEY_ID + i, p).hex() for i, p in enumerate(parts)],
        "sealed": sealed,
    }


if __name__ == "__main__":
    with open(PATH, "w") as f:
        json.dump(vectors(), f, indent=1)
        f.write("\n")
    print("wrote " + PATH)
