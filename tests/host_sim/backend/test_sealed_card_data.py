"""The collector's side of sealed card data: the acquirer step opens what terminals sealed to its key, keeps a tap
whose key records have not arrived pending (SealPending) and asks again later, authorises a tap whose sealed data
was altered (SealBroken) without card data, and the collector database holds no card number in clear.  Also the
`seal keygen` command and what provisioning writes to /flash/keys/seal.pub."""

import json
import logging
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from host_sim.backend import acquirer, sealing
from host_sim.tools import build, provision
from protocol import record, seal, seal_open
from tests.host_sim.helpers import CARDS, card_read, registered, seal_key_file, sealed_records


def pan_forms(pan):
    digits = pan + "F" if len(pan) % 2 else pan
    return [pan.encode(), bytes.fromhex(digits), bytes.fromhex(pan[:12])]


def test_a_tap_waits_for_its_key_records_then_opens_and_is_checked_by_the_issuer(tmp_path):
    key_file, modulus = seal_key_file(tmp_path)
    store = registered(tmp_path)
    keys_and_taps = sealed_records([card_read(atc=1), card_read(atc=2, cryptogram=bytes(8))], modulus)
    assert [r["kind"] for r in keys_and_taps] == [record.KIND_SEAL_KEY] * 2 + [record.KIND_EMV_CONTACTLESS] * 2
    store.store(keys_and_taps[2:])  # the taps arrived, their epoch key's records not yet
    opener = sealing.opener(key_file)
    result = acquirer.run_pass(store, acquirer.link_for(acquirer.Acquirer()), opener)
    assert (result.approved, result.declined, result.seal_pending, result.error) == (0, 0, 2, None)
    assert len(store.pending_records()) == 2  # the key records are no transactions
    store.store(keys_and_taps[:1])  # one part is not enough
    assert acquirer.run_pass(store, acquirer.link_for(acquirer.Acquirer()), opener).seal_pending == 2
    store.store(keys_and_taps[1:2])
    result = acquirer.run_pass(store, acquirer.link_for(acquirer.Acquirer()), opener)
    # opened: the issuer checked both cryptograms, and the forged one is declined
    assert (result.approved, result.declined, result.seal_pending, result.without_card_data) == (1, 1, 0, 0)
    assert store.pending_records() == [] and store.deny_list_version() == 1
    store.close()
    with open(str(tmp_path / "c.db"), "rb") as f:
        db = f.read()
    for form in pan_forms(CARDS["visa"][0]):
        assert form not in db


def test_altered_sealed_data_is_authorised_without_card_data(tmp_path, caplog):
    key_file, modulus = seal_key_file(tmp_path)
    store = registered(tmp_path)
    recs = sealed_records([card_read()], modulus)
    tap = recs[2]
    sealed = bytearray(tap["ext"][record.EXT_EMV_SEALED])
    sealed[-1] ^= 0x01
    tap["ext"][record.EXT_EMV_SEALED] = bytes(sealed)
    tap["raw"] = record.encode(tap["terminal"], tap["seq"], tap["time"], tap["kind"], tap["amount"], tap["currency"],
                               tap["decision"], tap["reason"], tap["fare_id"], tap["token"], list(tap["ext"].items()))
    store.store(recs)
    with pytest.raises(sealing.SealBroken):
        sealing.opener(key_file)(store, tap["terminal"].hex(), record.decode(tap["raw"]))
    caplog.set_level(logging.WARNING, logger="collector")
    strict = acquirer.Acquirer({"require_cryptogram": True})
    result = acquirer.run_pass(store, acquirer.link_for(strict), sealing.opener(key_file))
    assert (result.approved, result.declined, result.without_card_data, result.seal_pending) == (0, 1, 1, 0)
    assert "sealed card data broken" in caplog.text and "MAC check failed" in caplog.text


def test_the_development_key_opens_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(sealing, "DEV_KEY", str(tmp_path / "keys" / "collector.pem"))
    monkeypatch.setattr(sealing, "_OPENERS", {})
    modulus = sealing.public_modulus()  # created on first use
    assert (tmp_path / "keys" / "collector.pem").stat().st_mode & 0o777 == 0o600
    assert sealing.public_modulus() == modulus  # and kept
    store = registered(tmp_path)
    recs = sealed_records([card_read()], modulus)
    store.store(recs)
    opened = sealing.open_sealed(store, recs[2]["terminal"].hex(), recs[2])
    assert seal_open.key_id_of(recs[2]["ext"][record.EXT_EMV_SEALED]) == 1
    assert bytes.fromhex("4761739001010010") in opened


def test_seal_keygen_writes_a_pair_provisioning_reads(tmp_path):
    cmd = [sys.executable, "-m", "host_sim", "seal", "keygen", "--out", str(tmp_path / "k")]
    got = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert (tmp_path / "k" / "seal.pem").stat().st_mode & 0o777 == 0o600
    n = sealing.public_modulus(out["public_key"])
    assert n == sealing.public_modulus(out["private_key"]) and out["fingerprint"] == seal.fingerprint(n).hex()
    text = provision.seal_key_text(out["public_key"])
    assert text == "%0512x\n" % n and len(text.strip()) == 512
    again = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True)
    assert again.returncode == 1 and "never overwritten" in again.stderr  # a key is never replaced
    (tmp_path / "small.pem").write_bytes(sealing.private_pem(rsa.generate_private_key(65537, 1024)))
    with pytest.raises(ValueError, match="RSA-2048"):
        sealing.public_modulus(str(tmp_path / "small.pem"))
