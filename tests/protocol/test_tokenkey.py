"""protocol/tokenkey.py on both runtimes: the kind-4 bundle carrying the fleet token key opens only
under the device key it was sealed for, with the version it was made with; any other bytes (fuzzed,
flipped, truncated, relabelled) are refused with TokenKeyError, never another exception."""

import struct

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import tokenkey

KEY = bytes(range(32))
DEVICE = bytes(range(64, 96))
NONCE = bytes(range(12))


def body_make(device_key, version, key, nonce):
    from protocol import tokenkey

    return tokenkey.make(device_key, version, key, nonce)


def body_open(device_key, blobs):
    from protocol import tokenkey

    out = []
    for data in blobs:
        try:
            out.append(list(tokenkey.open_bundle(device_key, data)))
        except tokenkey.TokenKeyError as e:
            out.append("refused: " + str(e))
    return out


def test_token_key_bundle_opens_only_for_its_device(runtime):
    data = runtime.run(body_make, DEVICE, 7, KEY, NONCE)
    assert data == tokenkey.make(DEVICE, 7, KEY, NONCE) and len(data) == tokenkey.SIZE
    assert KEY not in data  # sealed
    flipped = bytearray(data)
    flipped[20] ^= 1
    relabelled = data[:4] + struct.pack("<I", 8) + data[8:]  # the version is authenticated too
    got = runtime.run(body_open, DEVICE, [data, bytes(flipped), relabelled, data[:-1], b"", b"ZTK1" + bytes(64)])
    assert got[0] == [7, KEY]
    assert all(isinstance(g, str) and g.startswith("refused") for g in got[1:])
    assert runtime.run(body_open, bytes(32), [data])[0].startswith("refused")


def test_token_key_bundle_parser_never_raises_anything_else(runtime):
    good = tokenkey.make(DEVICE, 1, KEY, NONCE)
    blobs = draw_examples(st.one_of(
        st.binary(max_size=80),
        st.binary(min_size=tokenkey.SIZE - 8, max_size=tokenkey.SIZE - 8).map(lambda b: good[:8] + b),
        st.integers(0, tokenkey.SIZE - 1).map(lambda i: good[:i] + bytes([good[i] ^ 0x55]) + good[i + 1:]),
    ), count=60)
    for blob, got in zip(blobs, runtime.run(body_open, DEVICE, blobs)):
        assert got == [1, KEY] if blob == good else got.startswith("refused")


def test_builder_refuses_bad_keys():
    for version, key in ((0, KEY), (1, KEY[:31]), (2 ** 32, KEY)):
        try:
            tokenkey.make(DEVICE, version, key, NONCE)
        except tokenkey.TokenKeyError:
            continue
        raise AssertionError("made a bundle of version %d, %d-byte key" % (version, len(key)))
