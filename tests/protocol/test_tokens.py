"""protocol/tokens.py and protocol/tokenkey.py on both runtimes: the fleet token is HMAC-SHA256(key,
account)[:16] (checked against CPython's hmac), the same for str and bytes and on every terminal; a
ticket's token needs no key; the kind-4 bundle opens only under the device key it was sealed for, and
any other bytes are refused with TokenKeyError, never another exception.  Also the deny-list delta
parser (protocol/bundle.py deny_head) under fuzzing: BundleError or a consistent header."""

import hashlib
import hmac
import struct

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import bundle, tokenkey, tokens

KEY = bytes(range(32))
DEVICE = bytes(range(64, 96))
NONCE = bytes(range(12))


def body_tokens(key, accounts):
    from protocol import tokens

    return [(tokens.token(key, a), tokens.token(key, a.encode())) for a in accounts]


def body_ticket_tokens(cases):
    from protocol import tokens

    return [tokens.ticket_token(issuer, tid) for issuer, tid in cases]


def body_open(device_key, blobs):
    from protocol import tokenkey

    out = []
    for data in blobs:
        try:
            out.append(list(tokenkey.open_bundle(device_key, data)))
        except tokenkey.TokenKeyError as e:
            out.append("refused: " + str(e))
    return out


def body_make(device_key, version, key, nonce):
    from protocol import tokenkey

    return tokenkey.make(device_key, version, key, nonce)


def body_heads(cases):
    from protocol import bundle

    out = []
    for head, size in cases:
        try:
            out.append(list(bundle.deny_head(head, size)))
        except bundle.BundleError:
            out.append(None)
    return out


def reference(key, account):
    return hmac.new(key, account.encode(), hashlib.sha256).digest()[:16]


def test_token_is_truncated_hmac_sha256(runtime):
    accounts = draw_examples(st.integers(12, 19).flatmap(
        lambda n: st.text("0123456789", min_size=n, max_size=n)), count=40) + ["6212345678901234"]
    got = runtime.run(body_tokens, KEY, accounts)
    for account, (as_str, as_bytes) in zip(accounts, got):
        assert as_str == as_bytes == reference(KEY, account)
    assert len({g[0] for g in got}) == len(set(accounts))


def test_token_depends_on_the_key_not_on_the_terminal(runtime):
    pan = "6212345678901234"
    [(a, _)] = runtime.run(body_tokens, KEY, [pan])
    [(again, _)] = runtime.run(body_tokens, KEY, [pan])
    [(other, _)] = runtime.run(body_tokens, bytes(32), [pan])
    assert a == again and a != other


def test_ticket_token_needs_no_key(runtime):
    cases = [(5, b"TICKET01"), (5, b"TICKET02"), (6, b"TICKET01")]
    got = runtime.run(body_ticket_tokens, cases)
    assert got == [hashlib.sha256(b"zf ticket" + struct.pack(">H", i) + t).digest()[:16] for i, t in cases]
    assert len(set(got)) == 3


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


def test_delta_parser_under_fuzzing(runtime):
    """Any header and size: refused, or a header whose counts add up to the size and that moves forward."""
    def good(args):
        base, step, n_add, n_remove = args
        data = bundle.deny_delta(base, base + step, [bytes([i]) * 16 for i in range(n_add)],
                                 [bytes([200 + i]) * 16 for i in range(n_remove)])
        return data[:bundle.HEAD], len(data)

    cases = draw_examples(st.one_of(
        st.tuples(st.binary(max_size=24), st.integers(0, 5000)),
        st.tuples(st.binary(min_size=16, max_size=16).map(lambda b: b"ZDD1" + b), st.integers(0, 5000)),
        st.tuples(st.integers(0, 1000), st.integers(1, 9), st.integers(0, 5), st.integers(0, 5)).map(good),
    ), count=80)
    for (head, size), got in zip(cases, runtime.run(body_heads, cases)):
        if got is None:
            continue
        base, version, n_add, n_remove = got
        assert head[:4] == b"ZDD1" and base < version
        assert size == bundle.HEAD + 16 * (n_add + n_remove) and n_add + n_remove <= bundle.MAX_TOKENS
    assert any(g is not None for g in runtime.run(body_heads, cases))


def test_host_and_terminal_compute_the_same_token():
    """The host (CPython, protocol/tokens.py) and the reference agree: the deny list uses the same value."""
    assert tokens.token(KEY, "6212345678901234") == reference(KEY, "6212345678901234")
