"""Sealed card data (protocol/seal.py, firmware/sealing.py, host_sim/backend/sealing.py): the golden vectors on
both runtimes, the host opening what a terminal sealed inside MicroPython, tampering refused (SealBroken), a
key record not yet stored (SealPending), a full journal or a missing host key declining the tap.  The parsers'
fuzz tests are in test_seal_open.py."""

import json
import os

import pytest
from cryptography.hazmat.primitives import serialization

from host_sim.backend import sealing
from protocol import record, seal_open, tlv

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "seal.json")
PAN = "6228480000000000018"


def load():
    with open(VECTORS) as f:
        return json.load(f)


def host_opener(v):
    return sealing.Opener([serialization.load_pem_private_key(v["private_key_pem"].encode(), password=None)])


class Records:
    """The part of the collector's Store the opener reads: stored raw records by (terminal, seq)."""

    def __init__(self, raws):
        self.raw = {}
        for raw in raws:
            rec = record.decode(raw)
            self.raw[(rec["terminal"].hex(), rec["seq"])] = raw

    def record(self, terminal, seq):
        return self.raw.get((terminal, seq))


# --- bodies --------------------------------------------------------------------------------------


def body_golden(v):
    from protocol import oaep, seal, seal_open

    n = int(v["modulus"], 16)
    wrapped = oaep.encrypt(bytes.fromhex(v["epoch_key"]), n, bytes.fromhex(v["oaep_seed"]))
    parts = seal.key_parts(v["key_id"], seal.fingerprint(n), wrapped)
    joined = seal_open.join_parts(list(reversed(parts)))
    key = bytes.fromhex(v["epoch_key"])
    sealed, opened = [], []
    for case in v["sealed"]:
        token = bytes.fromhex(case["token"])
        sealed.append(seal.seal_data(v["key_id"], key, case["count"], bytes.fromhex(case["plaintext"]), token))
        opened.append(seal_open.open_data(key, bytes.fromhex(case["sealed"]), token))
    return seal.fingerprint(n), wrapped, parts, joined, sealed, opened


def body_terminal(modulus_hex, first_seq, room, taps, prepare_between=True):
    """A firmware Sealer over a journal stand-in: seal `taps` (plaintext, token) one after another.
    Returns (journalled raw records, [sealed ext or reason], RSA wraps done while sealing a tap)."""
    from firmware import sealing
    from firmware.journal import JournalFull
    from protocol import record

    class Journal:
        def __init__(self):
            self.next_seq = first_seq
            self.records = []

        @property
        def full(self):
            return len(self.records) >= room

        def append(self, build):
            if self.full:
                raise JournalFull()
            raw = build(self.next_seq)
            self.records.append(raw)
            self.next_seq += 1
            return self.next_seq - 1

    state = [0, 0]  # random bytes drawn, wraps during taps

    def random(n):
        state[0] += 1
        return bytes([(state[0] * 31 + i) & 0xFF for i in range(n)])

    journal = Journal()
    sealer = sealing.Sealer(int(modulus_hex, 16), journal, b"5642TERM", lambda: 1800000000, random)
    sealer.prepare()
    out = []
    for plaintext, token in taps:
        drawn = state[0]
        try:
            sealed = sealer(plaintext, token)
        except sealing.Unavailable as e:
            out.append(e.args[0])
            continue
        if state[0] != drawn:
            state[1] += 1
        ext = ((record.EXT_EMV_SEALED, sealed),)
        journal.append(lambda seq, token=token, ext=ext: record.encode(
            b"5642TERM", seq, 1800000000, record.KIND_EMV_CONTACTLESS, 200, 156, record.ACCEPTED, 0, 1, token, ext))
        out.append(sealed)
        if prepare_between:
            sealer.prepare()
    return journal.records, out, state[1]


def body_decide_without_host_key():
    from firmware import decision
    from protocol import record

    card = {"aid": b"\xa0\x00\x00\x03\x33\x01\x01\x01", "pan": "6228480000000000018", "expiry": "2905",
            "track2": None, "ac": bytes(8), "cid": b"\x80", "atc": b"\x00\x05", "iad": b"", "aip": b"\x00\x80",
            "un": bytes(4), "psn": b""}
    d = decision.Decider(b"salt" * 4).decide_emv(card)
    return d.outcome == decision.DECLINE, d.reason, d.extensions, record.REASON_TEXT[d.reason]


# --- tests ---------------------------------------------------------------------------------------


def test_golden_vectors(runtime):
    v = load()
    fp, wrapped, parts, joined, sealed, opened = runtime.run(body_golden, v)
    assert fp.hex() == v["fingerprint"]
    assert wrapped.hex() == v["wrapped"]
    assert [p.hex() for p in parts] == v["key_parts"]
    assert joined == (v["key_id"], fp, wrapped)
    assert [s.hex() for s in sealed] == [c["sealed"] for c in v["sealed"]]
    assert [o.hex() for o in opened] == [c["plaintext"] for c in v["sealed"]]
    for i, raw in enumerate(v["key_records"]):  # the key records as the terminal journals them
        rec = record.decode(bytes.fromhex(raw))
        assert (rec["kind"], rec["seq"], rec["decision"], rec["token"]) == (record.KIND_SEAL_KEY, v["key_id"] + i, 0,
                                                                          record.NO_TOKEN)
        assert rec["ext"] == {record.EXT_SEAL_KEY: bytes.fromhex(v["key_parts"][i])}
        assert len(bytes.fromhex(raw)) <= record.MAX_SIZE


def test_vectors_are_what_the_builders_make():
    import seal_vectors

    assert seal_vectors.vectors() == load()


def test_host_opens_the_golden_vectors():
    v = load()
    store = Records([bytes.fromhex(r) for r in v["key_records"]])
    opener = host_opener(v)
    for case in v["sealed"]:
        rec = {"seq": 100, "token": bytes.fromhex(case["token"]),
               "ext": {record.EXT_EMV_SEALED: bytes.fromhex(case["sealed"])}}
        assert opener(store, v["terminal"], rec).hex() == case["plaintext"]
    assert opener.epoch_key(store, v["terminal"], v["key_id"]).hex() == v["epoch_key"]


def card_data(i):
    return tlv.encode(0x5A, bytes.fromhex(PAN + "F")) + tlv.encode(0x9F26, bytes([i]) * 8)


def test_host_opens_what_the_terminal_sealed(runtime):
    """Key records first, then the taps; the RSA wrap happens in prepare(), never while sealing a tap; an
    epoch ends after EPOCH_RECORDS seals and the next one journals its own key records."""
    v = load()
    taps = [(card_data(i), bytes([i]) * 16) for i in range(5)]
    raws, sealed, wraps_on_tap = runtime.run(body_terminal, v["modulus"], 7, 100, taps)
    assert wraps_on_tap == 0
    recs = [record.decode(r) for r in raws]
    assert [r["kind"] for r in recs] == [record.KIND_SEAL_KEY] * 2 + [record.KIND_EMV_CONTACTLESS] * 5
    assert [seal_open.key_id_of(s) for s in sealed] == [7] * 5
    store = Records(raws)
    opener = host_opener(v)
    for rec, (plaintext, _) in zip(recs[2:], taps):
        assert opener(store, rec["terminal"].hex(), rec) == plaintext
    assert all(PAN.encode() not in r and bytes.fromhex(PAN + "F") not in r for r in raws)


def test_a_new_epoch_after_epoch_records(monkeypatch):
    from firmware import sealing as fw_sealing

    monkeypatch.setattr(fw_sealing, "EPOCH_RECORDS", 2)
    v = load()
    taps = [(card_data(i), bytes([i]) * 16) for i in range(5)]
    raws, sealed, wraps_on_tap = body_terminal(v["modulus"], 1, 100, taps)
    kinds = [record.decode(r)["kind"] for r in raws]
    k, t = record.KIND_SEAL_KEY, record.KIND_EMV_CONTACTLESS
    assert kinds == [k, k, t, t, k, k, t, t, k, k, t]
    assert [seal_open.key_id_of(s) for s in sealed] == [1, 1, 5, 5, 9]
    assert wraps_on_tap == 0
    store = Records(raws)
    opener = host_opener(v)
    for raw, (plaintext, _) in zip([r for r in raws if record.decode(r)["kind"] == t], taps):
        rec = record.decode(raw)
        assert opener(store, rec["terminal"].hex(), rec) == plaintext


def test_without_idle_time_the_wrap_happens_on_the_tap():
    v = load()
    taps = [(card_data(i), bytes([i]) * 16) for i in range(2)]
    from firmware import sealing as fw_sealing

    old = fw_sealing.EPOCH_RECORDS
    fw_sealing.EPOCH_RECORDS = 1
    try:
        raws, sealed, wraps_on_tap = body_terminal(v["modulus"], 1, 100, taps, prepare_between=False)
    finally:
        fw_sealing.EPOCH_RECORDS = old
    assert wraps_on_tap == 1 and len(raws) == 6  # still sealed, key records still first


def test_a_full_journal_declines_and_keeps_nothing_unsealed(runtime):
    v = load()
    taps = [(card_data(i), bytes([i]) * 16) for i in range(2)]
    raws, out, _ = runtime.run(body_terminal, v["modulus"], 1, 1, taps)
    assert out == [record.REASON_JOURNAL_FULL] * 2
    assert [record.decode(r)["kind"] for r in raws] == [record.KIND_SEAL_KEY]  # a torn epoch: no tap sealed


def test_without_host_key_card_taps_decline(runtime):
    declined, reason, ext, text = runtime.run(body_decide_without_host_key)
    assert declined and reason == record.REASON_NO_SEAL_KEY and not ext and text == "no host key"


def sealed_setup():
    v = load()
    taps = [(card_data(1), bytes([1]) * 16)]
    raws, sealed, _ = body_terminal(v["modulus"], 1, 100, taps)
    return v, raws


def test_tampering_is_sealbroken():
    v, raws = sealed_setup()
    opener = host_opener(v)
    tap = record.decode(raws[2])
    terminal = tap["terminal"].hex()
    sealed = tap["ext"][record.EXT_EMV_SEALED]
    for i in range(seal_open.KEY_ID_SIZE, len(sealed)):  # any altered byte after the key id
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        rec = dict(tap, ext={record.EXT_EMV_SEALED: bytes(bad)})
        with pytest.raises(sealing.SealBroken):
            opener(Records(raws), terminal, rec)
    with pytest.raises(sealing.SealBroken):  # another token: the associated data differs
        opener(Records(raws), terminal, dict(tap, token=bytes(16)))
    with pytest.raises(sealing.SealBroken):
        opener(Records(raws), terminal, dict(tap, ext={record.EXT_EMV_SEALED: sealed[:20]}))
    for at in (60, 100, 150):  # a key record altered: the wrapped key no longer unwraps
        key_rec = bytearray(raws[1])
        key_rec[at] ^= 0x01
        with pytest.raises(sealing.SealBroken):
            host_opener(v)(Records([raws[0], bytes(key_rec), raws[2]]), terminal, tap)
    swapped = bytearray(raws[0])
    swapped[1] = record.KIND_EMV_CONTACTLESS  # a tap record where the key record should be
    with pytest.raises(sealing.SealBroken):
        host_opener(v)(Records([bytes(swapped), raws[1], raws[2]]), terminal, tap)


def test_another_collectors_key_is_sealbroken():
    v, raws = sealed_setup()
    tap = record.decode(raws[2])
    with pytest.raises(sealing.SealBroken, match="does not hold"):
        sealing.Opener([sealing.generate()])(Records(raws), tap["terminal"].hex(), tap)


def test_a_missing_key_record_is_sealpending():
    v, raws = sealed_setup()
    tap = record.decode(raws[2])
    opener = host_opener(v)
    for missing in (0, 1):
        with pytest.raises(sealing.SealPending):
            opener(Records([r for i, r in enumerate(raws) if i != missing]), tap["terminal"].hex(), tap)
    assert opener(Records(raws), tap["terminal"].hex(), tap) == card_data(1)  # arrived: it opens
    assert opener(Records([]), "x", {"ext": {}}) is None  # no sealed data at all
