"""protocol/tokens.py on both runtimes: the fleet token is HMAC-SHA256(key, account)[:16] (checked
against CPython's hmac), the same for str and bytes, the same for the same key; a ticket's token needs
no key.  Also the deny-list delta parser (protocol/bundle.py deny_head) under fuzzing: BundleError or
a header whose counts match the size and that moves forward."""

import hashlib
import hmac
import struct

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import bundle, tokens

KEY = bytes(range(32))


def body_tokens(key, accounts):
    from protocol import tokens

    return [(tokens.token(key, a), tokens.token(key, a.encode())) for a in accounts]


def body_ticket_tokens(cases):
    from protocol import tokens

    return [tokens.ticket_token(issuer, tid) for issuer, tid in cases]


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
        st.tuples(st.binary(min_size=16, max_size=16).map(lambda b: b"ZDD2" + b), st.integers(0, 5000)),
        st.tuples(st.integers(0, 1000), st.integers(1, 9), st.integers(0, 5), st.integers(0, 5)).map(good),
    ), count=80)
    for (head, size), got in zip(cases, runtime.run(body_heads, cases)):
        if got is None:
            continue
        base, version, n_add, n_remove = got
        assert head[:4] in (b"ZDD1", b"ZDD2") and base < version
        cap = bundle.MAX_TOKENS if head[:4] == b"ZDD2" else bundle.OLD_MAX_TOKENS
        assert size == bundle.HEAD + 16 * (n_add + n_remove) and n_add + n_remove <= cap
    assert any(g is not None for g in runtime.run(body_heads, cases))


def test_host_and_terminal_compute_the_same_token():
    """The host (CPython, protocol/tokens.py) and the reference agree: the deny list uses the same value."""
    assert tokens.token(KEY, "6212345678901234") == reference(KEY, "6212345678901234")
