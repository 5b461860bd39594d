"""`qr decode` and `qr make paycode` for numeric payment codes: family and masked digits, exit 0 for a
well-formed code, a refusal with the family's lengths (exit 1) for a wrong length; made codes are
recognised and judged by the test issuer as asked."""

import json
import subprocess
import sys

from host_sim import paycodes
from host_sim.paths import ROOT
from protocol import paycode


def qr(*args):
    return subprocess.run([sys.executable, "-m", "host_sim", "qr", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_a_unionpay_code_is_explained_masked():
    out = qr("decode", "6222021234567890123", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["format"], got["valid"]) == ("payment-code", True)
    assert got["fields"] == {"family": "unionpay", "digits": "6222***********0123", "length": 19,
                             "authorisation": "needs online authorisation"}
    assert "6222021234567890123" not in out.stdout


def test_a_wrong_length_is_refused_with_a_reason():
    out = qr("decode", "62220212345678901", "--json")
    assert out.returncode == 1
    assert out.stderr == "qr decode: refused: a unionpay payment code has 19 digits, this one 17\n"
    out = qr("decode", "2812345", "--json")
    assert "alipay payment code has 16 to 24 digits" in out.stderr and out.returncode == 1


def test_made_codes_are_recognised_and_judged_by_the_test_issuer():
    for name in ("unionpay", "wechat", "alipay"):
        out = qr("make", "paycode", "--family", name)
        code = out.stdout.strip()
        assert paycode.NAMES[paycode.classify(code)[0]] == name
        assert paycodes.verdict(code, 200) == (True, None)
        bad = qr("make", "paycode", "--family", name, "--invalid").stdout.strip()
        assert paycodes.verdict(bad, 200) == (False, "invalid code")
