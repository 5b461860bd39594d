"""Test numeric payment codes (protocol/paycode.py) and the test issuer's rule for them.

A real wallet's code is a one-time number only its issuer can map to an account.  The test issuer makes
that checkable: the last 4 digits of a code are HMAC-SHA256(test issuer key, family name | the digits
before them) as a number mod 10000.  `qr make paycode --family F` issues one; `--invalid` breaks the
check, so the issuer declines it.  Test key only: never use it for anything real.
"""

import hashlib
import hmac
import secrets

from protocol import paycode

TEST_KEY = hashlib.sha256(b"zhifu test payment code issuer key").digest()
PREFIX = {paycode.UNIONPAY: "62", paycode.WECHAT: "13", paycode.ALIPAY: "28"}
LENGTH = {paycode.UNIONPAY: 19, paycode.WECHAT: 18, paycode.ALIPAY: 18}
MAX_AMOUNT = 100000  # fen: above this the test issuer answers "insufficient funds"


def _check(family, head):
    mac = hmac.new(TEST_KEY, ("%s|%s" % (paycode.NAMES[family], head)).encode(), hashlib.sha256).digest()
    return "%04d" % (int.from_bytes(mac[:4], "big") % 10000)


def make(family, invalid=False, body=None):
    """A code of `family` (paycode.UNIONPAY ...) the test issuer approves, or declines with --invalid."""
    n = LENGTH[family] - len(PREFIX[family]) - 4
    middle = body if body is not None else "".join(str(secrets.randbelow(10)) for _ in range(n))
    head = PREFIX[family] + middle
    check = _check(family, head)
    if invalid:
        check = "%04d" % ((int(check) + 1) % 10000)
    return head + check


def verdict(digits, amount):
    """(approved, reason) of the test issuer for a code and an amount in fen."""
    got = paycode.classify(digits)
    if got is None:
        return False, "invalid code"
    family, code = got
    code = code.decode()
    if not hmac.compare_digest(_check(family, code[:-4]), code[-4:]):
        return False, "invalid code"
    if amount > MAX_AMOUNT:
        return False, "insufficient funds"
    return True, None
