"""protocol/seal_open.py on both runtimes: the host's side of sealed card data.  The golden key parts join in
any order and the golden sealed extensions open (protocol/vectors/seal.json); parts of different keys, a
missing part and altered data are refused with SealError; fuzzed input raises nothing else."""

import json
import os

from hypothesis import strategies as st
from runtimes import draw_examples

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "seal.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


def body_open(v):
    from protocol import seal_open

    parts = [bytes.fromhex(p) for p in v["key_parts"]]
    out = {"joined": seal_open.join_parts(parts), "reversed": seal_open.join_parts(parts[::-1])}
    key = bytes.fromhex(v["epoch_key"])
    out["opened"] = [seal_open.open_data(key, bytes.fromhex(c["sealed"]), bytes.fromhex(c["token"]))
                     for c in v["sealed"]]
    out["key_ids"] = [seal_open.key_id_of(bytes.fromhex(c["sealed"])) for c in v["sealed"]]
    errors = []
    other = bytearray(parts[1])
    other[0] ^= 1  # another key id
    bad = bytearray(bytes.fromhex(v["sealed"][0]["sealed"]))
    bad[-1] ^= 1
    for fn, args in ((seal_open.join_parts, ([parts[0], bytes(other)],)), (seal_open.join_parts, ([parts[0]],)),
                     (seal_open.join_parts, ([parts[0], parts[0]],)), (seal_open.parse_key_part, (parts[0][:-1],)),
                     (seal_open.open_data, (key, bytes(bad), bytes.fromhex(v["sealed"][0]["token"]))),
                     (seal_open.open_data, (key, bytes.fromhex(v["sealed"][0]["sealed"]), bytes(16))),
                     (seal_open.key_id_of, (bytes(31),))):
        try:
            fn(*args)
            errors.append(None)
        except seal_open.SealError as e:
            errors.append(str(e))
    out["errors"] = errors
    return out


def body_parse_quietly(blobs):
    """For each blob, the parsers that raised anything but SealError."""
    from protocol import seal_open

    key = bytes(32)
    bad = []
    for blob in blobs:
        for name, fn, args in (("part", seal_open.parse_key_part, (blob,)),
                               ("join", seal_open.join_parts, ([blob, blob],)),
                               ("key_id", seal_open.key_id_of, (blob,)),
                               ("open", seal_open.open_data, (key, blob, bytes(16)))):
            try:
                fn(*args)
            except seal_open.SealError:
                pass
            except Exception as e:
                bad.append((name, blob, repr(e)))
    return bad


def test_golden_vectors_open_and_broken_input_is_refused(runtime):
    v = load()
    got = runtime.run(body_open, v)
    wrapped = bytes.fromhex(v["wrapped"])
    assert got["joined"] == got["reversed"] == (v["key_id"], bytes.fromhex(v["fingerprint"]), wrapped)
    assert [o.hex() for o in got["opened"]] == [c["plaintext"] for c in v["sealed"]]
    assert got["key_ids"] == [v["key_id"]] * len(v["sealed"])
    assert None not in got["errors"], got["errors"]
    assert "different keys" in got["errors"][0] and "missing" in got["errors"][1] and "missing" in got["errors"][2]


def test_fuzz_parsers_only_raise_sealerror(runtime):
    v = load()
    part = bytes.fromhex(v["key_parts"][0])
    sealed = bytes.fromhex(v["sealed"][0]["sealed"])

    def mutate(args):
        base, pos, value, cut = args
        b = bytearray(base)
        b[pos % len(b)] = value
        return bytes(b[:cut])

    blobs = draw_examples(st.one_of(st.binary(max_size=300),
                                    st.tuples(st.sampled_from([part, sealed]), st.integers(0, 300),
                                              st.integers(0, 255), st.integers(0, 300)).map(mutate)), count=150)
    assert runtime.run(body_parse_quietly, blobs) == []
