"""protocol/bundle.py on both runtimes: the deny-list delta format, its header checks and the offer
signature under the config key derived from the device key."""

import hashlib

import pytest

from protocol import bundle

KEY = bytes(range(32))


def tok(i):
    return bytes([i]) * 16


def body_roundtrip(base, version, add, remove, key):
    import hashlib

    from protocol import bundle

    data = bundle.deny_delta(base, version, add, remove)
    head = bundle.deny_head(data[:bundle.HEAD], len(data))
    digest = hashlib.sha256(data).digest()
    ck = bundle.config_key(key)
    sig = bundle.signature(ck, bundle.KIND_DENY, version, len(data), digest)
    ok = bundle.verify(ck, bundle.KIND_DENY, version, len(data), digest, sig)
    forged = bundle.verify(ck, bundle.KIND_DENY, version + 1, len(data), digest, sig)
    other_key = bundle.verify(bundle.config_key(bytes(32)), bundle.KIND_DENY, version, len(data), digest, sig)
    return data, head, sig, ok, forged, other_key


def body_bad_heads(cases):
    from protocol import bundle

    out = []
    for head, size in cases:
        try:
            bundle.deny_head(head, size)
            out.append(None)
        except bundle.BundleError as e:
            out.append(str(e))
    return out


def test_delta_roundtrips_and_signature_binds_version_and_key(runtime):
    data, head, sig, ok, forged, other = runtime.run(body_roundtrip, 3, 5, [tok(1), tok(2)], [tok(9)], KEY)
    assert data[:4] == b"ZDD2" and len(data) == bundle.HEAD + 3 * 16
    assert tuple(head) == (3, 5, 2, 1)
    assert (ok, forged, other) == (True, False, False)
    # the same bytes on CPython: both runtimes agree on the format and the signature
    assert data == bundle.deny_delta(3, 5, [tok(1), tok(2)], [tok(9)])
    ck = bundle.config_key(KEY)
    assert sig == bundle.signature(ck, bundle.KIND_DENY, 5, len(data), hashlib.sha256(data).digest())


def test_malformed_heads_are_refused(runtime):
    good = bundle.deny_delta(0, 1, [tok(1)])
    cases = [
        (good[:bundle.HEAD], len(good)),  # fine
        (b"XXXX" + good[4:bundle.HEAD], len(good)),  # magic
        (good[:10], len(good)),  # truncated
        (good[:bundle.HEAD], len(good) + 1),  # size disagrees
        (bundle.MAGIC + (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(8), bundle.HEAD),  # no move
        (bundle.OLD_MAGIC + bytes(4) + (1).to_bytes(4, "little") + (300).to_bytes(4, "little") + bytes(4),
         bundle.HEAD + 300 * 16),  # too many tokens for the old format
        (bundle.MAGIC + bytes(4) + (1).to_bytes(4, "little") + (70000).to_bytes(4, "little") + bytes(4),
         bundle.HEAD + 70000 * 16),  # more than a terminal stages at once
        (bundle.OLD_MAGIC + good[4:bundle.HEAD], len(good)),  # the old format: still read
        (bundle.MAGIC + bytes(4) + (1).to_bytes(4, "little") + (300).to_bytes(4, "little") + bytes(4),
         bundle.HEAD + 300 * 16),  # the new one has no 256-token cap
    ]
    out = runtime.run(body_bad_heads, cases)
    assert out[0] is None and all(out[1:-2]) and out[-2:] == [None, None]


def test_builder_refuses_what_a_terminal_would_refuse():
    with pytest.raises(bundle.BundleError):
        bundle.deny_delta(2, 2, [tok(1)])
    with pytest.raises(bundle.BundleError):
        bundle.deny_delta(0, 1, [b"short"])
    with pytest.raises(bundle.BundleError):
        bundle.deny_delta(0, 1, [i.to_bytes(16, "big") for i in range(bundle.MAX_TOKENS + 1)])


def test_a_delta_is_sent_sorted_and_once():
    data = bundle.deny_delta(0, 1, [tok(9), tok(3), tok(9)], [tok(7), tok(2)])
    assert bundle.ordered(data) and bundle.deny_head(data[:bundle.HEAD], len(data)) == (0, 1, 2, 2)
    assert data[bundle.HEAD:] == tok(3) + tok(9) + tok(2) + tok(7)
