"""`python -m host_sim qr`: decode JSON contract on the vectors (exact trees, masking, MPM crc_ok),
tickets with a keyring, make (payloads and PNGs read back), and no crash on any text.
"""

import json
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from host_sim.paths import ROOT
from host_sim.tools import qr, qr_image

VECTORS = os.path.join(ROOT, "tests", "vectors", "emv_qr.json")


def vectors():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def run(*args, code=0):
    out = subprocess.run([sys.executable, "-m", "host_sim", "qr", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == code, out.stderr
    if code:  # refused: one clear line saying why, no traceback
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("qr decode: refused: "), out.stderr
    return out.stdout


def test_cpm_vector_decodes_exactly_and_masks_the_pan():
    v = vectors()["cpm"][0]
    revealed = json.loads(run("decode", v["payload"], "--json", "--reveal"))
    assert revealed["format"] == "emv-cpm" and revealed["valid"] is True and revealed["error"] is None
    assert revealed["tlv"] == v["tlv"]
    assert revealed["fields"]["account"] == "1234567890123458"
    masked = json.loads(run("decode", v["payload"], "--json"))
    assert "1234567890123458" not in json.dumps(masked)
    assert masked["tlv"][3]["children"][0] == {"tag": "5A", "value": "123456******3458"}
    assert "crc_ok" not in masked


def test_mpm_vectors_and_wrong_crc():
    for v in vectors()["mpm"]:
        got = json.loads(run("decode", v["payload"], "--json", code=0 if v["crc_ok"] else 1))
        assert got["format"] == "emv-mpm" and got["crc_ok"] is v["crc_ok"] and got["valid"] is v["crc_ok"]
        assert (got["error"] is None) is v["crc_ok"]
        assert got["tlv"][8] == {"tag": "62", "children": [{"tag": "07", "value": "T0012"}]}


def test_track2_masking_keeps_only_bin_last4_and_expiry():
    payload = run("make", "cpm", "--pan", "6212345678901234569").strip()
    got = qr.decode(payload)
    track2 = got["tlv"][2]["children"][0]
    assert track2["tag"] == "57" and track2["value"].startswith("621234*********4569D3012")
    assert set(track2["value"][24:]) == {"*"}
    assert got["fields"]["deferred"] is True and got["fields"]["cid"] == "80"
    assert qr.decode(payload, reveal=True)["fields"]["account"] == "6212345678901234569"


def test_ticket_make_decode_keyring_and_png(tmp_path):
    keys = str(tmp_path / "keys")
    png = str(tmp_path / "t.png")
    text = run("make", "ticket", "--keys-dir", keys, "--issuer", "3", "--key-id", "2", "--entries", "2",
               "--png", png).strip()
    ring = tmp_path / "ring"
    ring.write_text(run("keyring", "--keys-dir", keys, "--key", "3:2"))
    got = json.loads(run("decode", text, "--json", "--keys", str(ring)))
    assert got["format"] == "ticket" and got["valid"] is True and got["fields"]["signature"] == "ok"
    assert got["fields"]["issuer"] == 3 and got["fields"]["key_id"] == 2 and got["fields"]["entries"] == 2
    ring.write_text(run("keyring", "--keys-dir", keys, "--key", "3:2", "--revoke", "3:2"))
    got = json.loads(run("decode", text, "--json", "--keys", str(ring), code=1))
    assert got["valid"] is False and got["fields"]["signature"] == "revoked key"
    assert qr_image.decode_image(png) == [text]


def test_unknown_and_mpm_png(tmp_path):
    got = json.loads(run("decode", "hello", "--json", code=1))
    assert got == {"format": "unknown", "valid": False, "error": got["error"], "tlv": [], "fields": {}}
    assert got["error"]
    png = str(tmp_path / "m.png")
    text = run("make", "mpm", "--amount", "2.00", "--png", png).strip()
    assert qr_image.decode_image(png) == [text]
    got = qr.decode(text)
    assert got["valid"] and got["fields"]["amount"] == "2.00" and got["fields"]["static"] is False


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=200), st.text(max_size=200).map(lambda t: "hQVDUFYwM" + t),
                 st.text(max_size=200).map(lambda t: "0002" + t), st.text(max_size=400).map(lambda t: "ZT1." + t)))
def test_decode_never_raises(text):
    got = qr.decode(text)
    assert set(got) >= {"format", "valid", "error", "tlv", "fields"}
    assert got["valid"] is (got["error"] is None)
    json.dumps(got)


def test_payload_bytes_that_are_not_utf8_are_refused_with_a_reason():
    """argv bytes that are not UTF-8 reach decode as surrogate escapes (found by `host_sim fuzz`)."""
    text = "0002015902P\udcd36304ABCD"
    assert qr.decode(text)["error"] == "payload is not UTF-8 text"
    run("decode", text, code=1)


def test_cpm_make_profiles_forge_and_a_refused_decode():
    """`qr make cpm` codes of every profile decode and pass the terminal's checks; --forge only changes
    the cryptogram; a bad code exits 1 with one line."""
    from host_sim.emulators import wallet

    for profile in sorted(wallet.ACCOUNTS):
        text = run("make", "cpm", "--profile", profile, "--atc", "7").strip()
        got = json.loads(run("decode", text, "--json", "--reveal"))
        assert got["valid"] and got["fields"]["check"] == "ok" and got["fields"]["atc"] == 7, got
        assert got["fields"]["account"] == wallet.ACCOUNTS[profile][0]
    forged = qr.decode(run("make", "cpm", "--forge").strip(), reveal=True)
    assert forged["valid"] and forged["fields"]["check"] == "ok"
    assert run("make", "cpm", "--cryptogram", "0102030405060708").strip() != run("make", "cpm").strip()
    bad = run("make", "cpm", "--pan", "6212345678901234567").strip()  # fails its Luhn check
    assert qr.decode(bad)["fields"]["check"] == "bad card number"
    got = json.loads(run("decode", bad[:30], "--json", code=1))
    assert got["valid"] is False and got["error"]


def test_make_group_ticket_and_refuse_a_party_out_of_range(tmp_path):
    keys = str(tmp_path / "keys")
    text = run("make", "ticket", "--keys-dir", keys, "--issuer", "3", "--party", "4").strip()
    ring = tmp_path / "ring"
    ring.write_text(run("keyring", "--keys-dir", keys, "--key", "3:1"))
    got = json.loads(run("decode", text, "--json", "--keys", str(ring)))
    assert got["valid"] and (got["fields"]["version"], got["fields"]["party"]) == (2, 4)
    out = subprocess.run([sys.executable, "-m", "host_sim", "qr", "make", "ticket", "--keys-dir", keys, "--party", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr == "qr make: party size 0 outside 1..255\n"
