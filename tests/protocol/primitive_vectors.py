"""Writes protocol/vectors/primitives.json: the link protocol's building blocks, one vector per rule an
implementer working from SPEC.md alone could get wrong (COBS at 254-byte runs, the key-derivation
counter, the AES-CTR block counter, where the SACK bitmap sits in a secured frame, byte orders).

    /work/main/.venv/bin/python tests/protocol/primitive_vectors.py      # rewrite the file

Fixed inputs, so the file changes only when the protocol does; tests/protocol/test_link_primitives.py
checks the committed file on both runtimes and never regenerates it.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from protocol import cobs, crypto, frame, link, session  # noqa: E402

PATH = os.path.join(ROOT, "protocol", "vectors", "primitives.json")
KEY = bytes(range(0x40, 0x60))
TH = bytes(range(0x80, 0xA0))  # a stand-in transcript hash


def run(n, start=1):
    """n non-zero bytes."""
    return bytes((start + i) % 255 + 1 for i in range(n))


def cobs_vectors():
    cases = [
        ("empty", b""),
        ("one zero", b"\x00"),
        ("253 non-zero bytes", run(253)),
        ("254 non-zero bytes: a full block, then the empty block that ends the frame", run(254)),
        ("255 non-zero bytes", run(255)),
        ("254 non-zero bytes then a zero", run(254) + b"\x00"),
        ("254 non-zero, a zero, 254 non-zero", run(254) + b"\x00" + run(254, 7)),
        ("508 non-zero bytes", run(508)),
    ]
    out = [{"name": name, "data": data.hex(), "cobs": cobs.encode(data).hex()} for name, data in cases]
    # Other COBS encoders end a frame whose last block is full without the empty block: accepted too.
    full = run(254)
    out.append({"name": "254 non-zero bytes, final empty block left out", "data": full.hex(),
                "cobs": (b"\xff" + full).hex(), "decode_only": True})
    return out


def cobs_invalid():
    return [
        {"name": "zero code byte", "cobs": "010001"},
        {"name": "block runs past the end", "cobs": "05616263"},
        {"name": "zero inside a block", "cobs": "03610062"},
    ]


def kdf_vectors():
    cases = [(KEY, b"zf1 session" + TH, 32), (KEY, b"t2h enc", 16), (KEY, b"two blocks", 48),
             (KEY, b"", 64)]
    out = []
    for key, label, n in cases:
        blocks = [crypto.hmac_sha256(key, label + bytes([c])).hex() for c in range(1, (n + 31) // 32 + 1)]
        out.append({"key": key.hex(), "label": label.hex(), "length": n,
                    "blocks": blocks, "output": crypto.derive(key, label, n).hex()})
    return out


def ctr_vectors():
    enc = crypto.derive(KEY, b"t2h enc", 16)
    out = []
    for counter, n in ((1, 40), (0x01020304, 20)):
        nonce = bytearray(12)
        nonce[0:4] = counter.to_bytes(4, "little")
        blocks = [(bytes(nonce) + b.to_bytes(4, "big")).hex() for b in range((n + 15) // 16)]
        out.append({"key": enc.hex(), "frame_counter": counter, "nonce": bytes(nonce).hex(), "counter_blocks": blocks,
                    "keystream": crypto.aes_ctr(enc, bytes(nonce), bytes(n)).hex()})
    return out


def secured_sack_vector():
    """A sequenced STATUS that piggybacks a SACK, sealed: header | sack | counter | ciphertext | MAC."""
    s = session.Session(KEY, session.ROLE_TERMINAL, TH)
    clear = link.encode(link.STATUS, link.status(3, 1, -90, 0, 0, 0, 0, 120), 7, 5, (1 << 0) | (1 << 127),
                        link.FLAG_SEQ)
    sealed = s.seal(clear)
    hs = link.HEADER_SIZE + link.SACK_SIZE
    return {"key": KEY.hex(), "transcript": TH.hex(), "t2h_enc": crypto.derive(
        crypto.derive(KEY, b"zf1 session" + TH, 32), b"t2h enc", 16).hex(),
        "clear": clear.hex(), "payload": sealed.hex(), "frame": frame.encode(sealed).hex(),
        "header": sealed[:link.HEADER_SIZE].hex(), "sack": sealed[link.HEADER_SIZE:hs].hex(),
        "counter": sealed[hs:hs + 4].hex(), "ciphertext": sealed[hs + 4:-session.MAC_SIZE].hex(),
        "mac": sealed[-session.MAC_SIZE:].hex()}


def byte_order_vectors():
    """One body per message type whose every multi-byte field has a distinct value, so a byte-order
    mistake in any one field shows."""
    tid = bytes.fromhex("5a46000000000107")
    cases = [
        ("hello", link.HELLO, link.hello(tid, "fw", 0x0102, 0x03, 0x0104, bytes(range(16)))),
        ("records", link.RECORDS, link.records([bytes(range(44))])),
        ("config_offer", link.CONFIG_OFFER, link.config_offer(2, 0x01020304, 0x05060708, bytes(32), b"\x01\x02")),
        ("config_chunk", link.CONFIG_CHUNK, link.config_chunk(3, 0x01020304, 0x05060708, b"ab")),
        ("time", link.TIME, link.time_sync(0x01020304, 0x0102030405060708, 0x090A0B0C)),
        ("status", link.STATUS, link.status(0x01020304, 0x05, -2, 0x0607, 0x0809, 0x0A0B, 0x0C0D, 0x0E0F1011)),
        ("status with quarantined and damaged", link.STATUS, link.status(
            0x01020304, 0x05, -2, 0x0607, 0x0809, 0x0A0B, 0x0C0D, 0x0E0F1011,
            (0x12131415, 0x1617, 0x1819, 0x1A1B1C1D, 0x1E1F, 0x2021))),
        ("auth from the host", link.AUTH, link.auth(bytes(range(32)), 0x01020304)),
        ("refused", link.REFUSED, link.refused([(0x01020304, 1), (0x05060708, 4)])),
        ("error", link.ERROR, link.error(3, "x")),
        ("bye", link.BYE, link.bye(2)),
    ]
    out = []
    for name, mtype, body in cases:
        clear = mtype in (link.HELLO, link.AUTH, link.ERROR, link.BYE)
        p = link.encode(mtype, body, 0 if clear else 0x0102, 0 if clear else 0x0304, None,
                        0 if clear else link.FLAG_SEQ)
        msg = link.decode(p, tid)
        out.append({"name": name, "payload": p.hex(),
                    "message": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in msg.items()
                                if k != "records"}})
    return out


def vectors():
    return {
        "spec": "protocol/SPEC.md, Link protocol v1, sections 1-5",
        "cobs": cobs_vectors(), "cobs_invalid": cobs_invalid(), "kdf": kdf_vectors(), "aes_ctr": ctr_vectors(),
        "secured_with_sack": secured_sack_vector(), "byte_order": byte_order_vectors(),
        "max_payload": [[n, link.max_payload(n)] for n in (64, 256, 262, 285, 288, 488, 512)],
    }


if __name__ == "__main__":
    with open(PATH, "w") as f:
        json.dump(vectors(), f, indent=1)
        f.write("\n")
    print("wrote", PATH)
