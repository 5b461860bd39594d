"""firmware/config/receiver.py on both runtimes: a deny-list bundle staged chunk by chunk, resumed after a reboot
from the offset in flash, refused when its signature or digest is wrong, rebased when its base is
newer than the list, applied atomically when whole."""

import hashlib

from protocol import bundle
from tests.firmware.helpers import body_steps

KEY = bytes(range(32))


def tok(i):
    return bytes([i]) * 16


def offer(data, version, key=KEY, digest=None):
    digest = digest or hashlib.sha256(data).digest()
    sig = bundle.signature(bundle.config_key(key), bundle.KIND_DENY, version, len(data), digest)
    return {"kind": bundle.KIND_DENY, "version": version, "size": len(data), "digest": digest, "signature": sig}


def chunk(data, version, offset, n):
    return {"kind": bundle.KIND_DENY, "version": version, "offset": offset, "data": data[offset:offset + n]}


def test_staged_resumed_verified_and_applied(runtime, tmp_path):
    root = str(tmp_path)
    data = bundle.deny_delta(0, 3, [tok(1), tok(2), tok(3)])
    o = offer(data, 3)
    steps = [
        ("offer", o),
        ("chunk", chunk(data, 3, 0, 30)),
        ("chunk", chunk(data, 3, 40, 30)),  # ahead of a gap: not acknowledged
        ("reboot",),  # power cut: 30 bytes are in flash
        ("offer", o),
        ("chunk", chunk(data, 3, 0, 30)),  # already held: acknowledged, ignored
        ("chunk", chunk(data, 3, 30, 100)),
    ]
    out, version, probes, _ = runtime.run(body_steps, root, KEY, steps, [tok(i) for i in range(8)])
    assert out[0] == [1, 3, 0]
    assert out[1] == [True, None] and out[2] == [False, None]
    assert out[4] == [1, 3, 30]  # resumed from the offset in flash
    assert out[5] == [True, None]
    assert out[6] == [True, [1, 3, len(data)]]  # whole, checked, applied: confirmed
    assert version == 3 and [i for i, d in enumerate(probes) if d] == [1, 2, 3]


def test_bad_signature_digest_and_newer_base_are_not_applied(runtime, tmp_path):
    root = str(tmp_path)
    data = bundle.deny_delta(0, 2, [tok(4)])
    later = bundle.deny_delta(5, 6, [tok(5)])
    bad_digest = offer(data, 2, digest=bytes(32))
    steps = [
        ("offer", offer(data, 2, key=bytes(32))),  # signed under another terminal's key
        ("offer", bad_digest),
        ("chunk", chunk(data, 2, 0, 200)),  # whole, but not what the offer's digest says
        ("offer", offer(later, 6)),
        ("chunk", chunk(later, 6, 0, 200)),  # base 5 > version 0: rebase
        ("offer", offer(data, 2)),
        ("chunk", chunk(data, 2, 0, 200)),
        ("offer", offer(data, 2)),  # the same version again: already held
        ("offer", dict(offer(data, 2), kind=9)),
    ]
    out, version, probes, _ = runtime.run(body_steps, root, KEY, steps, [tok(i) for i in range(8)])
    assert out[0].startswith("refused: bad signature")
    assert out[2].startswith("refused:") and "digest" in out[2]
    assert out[4] == [True, [1, 0, bundle.REBASE]]
    assert out[6] == [True, [1, 2, len(data)]]
    assert out[7] == [1, 2, len(data)]
    assert out[8].startswith("refused: config kind 9")
    assert version == 2 and [i for i, d in enumerate(probes) if d] == [4]


def big(i):
    return i.to_bytes(4, "big") * 4


def test_a_delta_past_the_old_256_token_cap_is_streamed_and_an_unsorted_one_refused(runtime, tmp_path):
    root = str(tmp_path)
    data = bundle.deny_delta(0, 1, [big(i) for i in range(1000)])  # 16 KB: four times the old cap
    unsorted = b"ZDD2" + bundle.deny_delta(1, 2, [big(5000), big(4000)])[4:bundle.HEAD] + big(5000) + big(4000)
    steps = [("offer", offer(data, 1))]
    steps += [("chunk", chunk(data, 1, at, 4000)) for at in range(0, len(data), 4000)]
    steps += [("offer", offer(unsorted, 2)), ("chunk", chunk(unsorted, 2, 0, 200))]
    probes = [big(0), big(999), big(1000), big(4000), big(5000)]
    out, version, denied, boot = runtime.run(body_steps, root, KEY, steps, probes)
    assert out[len(data) // 4000 + 1] == [True, [1, 1, len(data)]]
    assert out[-1].startswith("refused:") and "ascending" in out[-1]
    assert version == 1 and denied == [True, True, False, False, False]  # the list stayed at version 1
    assert boot["staged"] == ["deny.bin.ovl"]  # the staged bundle deleted, nothing half written left


def test_a_full_heap_at_activation_keeps_the_staged_bundle_for_the_retransmitted_last_chunk(runtime, tmp_path):
    root = str(tmp_path)
    data = bundle.deny_delta(0, 4, [tok(6), tok(7)])
    steps = [
        ("offer", offer(data, 4)),
        ("chunk", chunk(data, 4, 0, 20)),
        ("full heap",),
        ("chunk", chunk(data, 4, 20, 200)),  # whole; the activation runs out of memory: frame not acknowledged
        ("chunk", chunk(data, 4, 20, 200)),  # the host sends it again: activated from the staged file
        ("chunk", chunk(data, 4, 20, 200)),  # and once more (the confirmation was lost): nothing staged, stale
    ]
    out, version, probes, _ = runtime.run(body_steps, root, KEY, steps, [tok(i) for i in range(8)])
    assert out[3] == "memory"
    assert out[4] == [True, [1, 4, len(data)]]
    assert out[5] == [True, None]
    assert version == 4 and [i for i, d in enumerate(probes) if d] == [6, 7]
