"""Numeric payment codes (付款码): UnionPay, WeChat Pay and Alipay one-time codes that need an online
authorisation (protocol/SPEC.md "Payment codes").

A code is only ASCII digits of an exact length with a family prefix; nothing in it can be checked
offline, so the terminal recognises it here and asks the host (link ONLINE_REQUEST).  A scanner line
may end in CR/LF.  Runs unchanged on CPython and MicroPython.
"""

UNIONPAY = 1
WECHAT = 2
ALIPAY = 3

NAMES = {UNIONPAY: "unionpay", WECHAT: "wechat", ALIPAY: "alipay"}
FAMILY_OF_NAME = {"unionpay": UNIONPAY, "wechat": WECHAT, "alipay": ALIPAY}

MIN_DIGITS = 16
MAX_DIGITS = 24

# family -> (first two digits low, high, shortest, longest)
_RULES = ((UNIONPAY, 62, 62, 19, 19), (WECHAT, 10, 15, 18, 18), (ALIPAY, 25, 30, 16, 24))


def _digits(payload):
    """The payload as ASCII digit bytes without a trailing CR/LF, or None if anything else is in it."""
    try:
        b = payload.encode() if isinstance(payload, str) else bytes(payload)
    except UnicodeError:  # a command-line argument that was not UTF-8 (surrogate escapes): not digits
        return None
    n = len(b)
    while n and (b[n - 1] == 13 or b[n - 1] == 10):
        n -= 1
    if n == 0 or n > 32:
        return None
    for i in range(n):
        if not 48 <= b[i] <= 57:
            return None
    return b[:n]


def family_of(payload):
    """The family whose prefix the all-digit payload starts with, whatever its length; None if it is not
    all digits or no family uses its prefix."""
    d = _digits(payload)
    if d is None or len(d) < 2:
        return None
    head = (d[0] - 48) * 10 + d[1] - 48
    for fam, low, high, _, _ in _RULES:
        if low <= head <= high:
            return fam
    return None


def classify(payload):
    """(family, digits as bytes) for a well-formed payment code, else None."""
    d = _digits(payload)
    if d is None or len(d) < 2:
        return None
    head = (d[0] - 48) * 10 + d[1] - 48
    for fam, low, high, shortest, longest in _RULES:
        if low <= head <= high and shortest <= len(d) <= longest:
            return fam, d
    return None


def is_numeric(payload):
    """Cheap test on the raw scanner line: all digits (a malformed payment code is still one)."""
    return _digits(payload) is not None


def lengths(family):
    for fam, _, _, shortest, longest in _RULES:
        if fam == family:
            return shortest, longest
    return 0, 0


def masked(digits):
    """The code for people: first 4 and last 4 digits, the rest '*'."""
    s = digits.decode() if not isinstance(digits, str) else digits
    return s[:4] + "*" * (len(s) - 8) + s[-4:] if len(s) > 8 else "*" * len(s)
