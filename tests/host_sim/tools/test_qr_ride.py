"""`qr make ride` / `qr decode` / `qr ride-roots` and `provision --ride-roots` checks: a fresh code of each
algorithm explains its chain and verdict "ok"; an expired, revoked, stale or garbled one is refused with
exit 1 and its verdict; decode never raises on junk after the prefix; the roots file is checked."""

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sim.paths import ROOT
from host_sim.tools import provision, qr, ridecodes


def run(*args, code=0):
    out = subprocess.run([sys.executable, "-m", "host_sim", "qr", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == code, out.stderr
    if code:
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("qr decode: refused: "), out.stderr
    return out.stdout


@pytest.mark.parametrize("alg", ["sm2", "p256"])
def test_make_and_decode_a_fresh_code(alg):
    text = run("make", "ride", "--alg", alg, "--user", "BUS42", "--counter", "9").strip()
    got = json.loads(run("decode", text, "--json"))
    f = got["fields"]
    assert got["format"] == "ride-code" and got["valid"] and f["verdict"] == "ok"
    assert f["root"] == {"id": 1 if alg == "sm2" else 2, "alg": alg, "trusted": True}
    assert f["issuer"]["alg"] == f["user"]["alg"] == alg and not f["issuer"]["revoked"]
    assert f["user"]["id"] == b"BUS42\0\0\0".hex() and f["code"]["counter"] == 9 and 0 <= f["code"]["age_s"] < 30


@pytest.mark.parametrize("flags, verdict", [(["--expired"], "user certificate expired"),
                                            (["--revoked"], "issuer revoked"),
                                            (["--age", "600"], "code too old"),
                                            (["--age", "-600"], "code from the future")])
def test_refused_codes_say_why(flags, verdict):
    text = run("make", "ride", "--alg", "p256", *flags).strip()
    got = json.loads(run("decode", text, "--json", code=1))
    assert got["fields"]["verdict"] == verdict == got["error"]


def test_roots_file_and_revocations_given(tmp_path):
    text = run("make", "ride", "--alg", "sm2").strip()
    roots = tmp_path / "roots"
    roots.write_text(run("ride-roots"))
    assert provision.read_ride_roots(str(roots)) == ridecodes.root_lines()
    got = json.loads(run("decode", text, "--ride-roots", str(roots), "--revoke-ride", "11:1", code=1))
    assert got["fields"]["verdict"] == "issuer revoked"
    only_p256 = tmp_path / "p256"
    only_p256.write_text(ridecodes.root_lines((2,)))
    got = json.loads(run("decode", text, "--ride-roots", str(only_p256), code=1))
    assert got["fields"]["verdict"] == "unknown root" and got["fields"]["root"]["trusted"] is False
    bad = tmp_path / "bad"
    bad.write_text("root 1 sm2 00\n")
    with pytest.raises(provision.ProvisionError):
        provision.read_ride_roots(str(bad))


@settings(max_examples=100)
@given(st.one_of(st.text(max_size=600).map(lambda t: "ZR1." + t),
                 st.integers(0, 490).map(lambda i: ridecodes.issue(1, 1_800_000_000)[:i])))
def test_decode_never_raises_on_ride_codes(text):
    got = qr.decode(text)
    assert got["format"] == "ride-code" or not text.startswith("ZR1.")
    assert got["valid"] is False and got["error"]
    json.dumps(got)
