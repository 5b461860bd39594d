"""The deny list in flash on both runtimes: versions, deltas into the overlay, merges into a new base,
the bundle formats it reads, damage, RAM."""

import os
import random
import struct

import pytest


def body_apply_and_search(path, steps, probes, overlay_max=4096):
    """Apply (version, add, remove) steps; return the list state and which probes are denied."""
    from firmware.denylist import DenyList

    d = DenyList(path, overlay_max)
    applied = [d.apply(v, add, remove) for v, add, remove in steps]
    merges = getattr(d, "merges", 0)  # set by firmware/denylist_merge.py when a delta rebuilt the base
    d.close()
    again = DenyList(path, overlay_max)  # what a reboot reads back
    return applied, again.version, again.count, [again.contains(t) for t in probes], merges


def body_damaged(path):
    from firmware.denylist import DenyList, DenyListError

    try:
        DenyList(path)
    except DenyListError as e:
        return str(e)
    return None


def tok(i):
    return i.to_bytes(4, "big") * 4


def test_deltas_follow_versions_and_survive_a_reload(runtime, tmp_path):
    path = str(tmp_path / "config" / "deny.bin")
    steps = [
        (1, [tok(5), tok(1), tok(9)], []),
        (1, [tok(7)], []),  # same version again: ignored
        (3, [tok(3), tok(9)], [tok(1)]),  # 9 already there: kept once; 1 removed
        (2, [tok(8)], []),  # older: ignored
    ]
    probes = [tok(i) for i in range(11)]
    applied, version, count, denied, merges = runtime.run(body_apply_and_search, path, steps, probes)
    assert applied == [True, False, True, False]
    assert (version, count) == (3, 3)
    assert [i for i, d in enumerate(denied) if d] == [3, 5, 9]
    assert merges == 0 and not os.path.exists(path)  # small deltas only ever rewrote the overlay
    # header, 3 entries of key (6) + op, and the two bounds of the single bucket
    assert os.path.getsize(path + ".ovl") == 24 + 3 * 7 + 2 * 4


@pytest.mark.parametrize("overlay_max", [4096, 30])
def test_matches_a_python_set_for_random_deltas(runtime, tmp_path, overlay_max):
    """With a small overlay the deltas also go through merges into new bases."""
    rng = random.Random(5)
    path = str(tmp_path / "deny.bin")
    model, steps = set(), []
    for version in range(1, 10):
        add = [rng.randbytes(16) for _ in range(rng.randrange(0, 40))]
        add += rng.sample(sorted(model), min(len(model), 2))  # already listed
        remove = rng.sample(sorted(model), min(len(model), rng.randrange(0, 8))) + [rng.randbytes(16)]
        steps.append((version, add, remove))
        model = (model | set(add)) - set(remove)
    probes = sorted(model) + [rng.randbytes(16) for _ in range(50)]
    _, version, count, denied, merges = runtime.run(body_apply_and_search, path, steps, probes, overlay_max)
    assert (version, count) == (9, len(model))
    assert denied == [p in model for p in probes]
    assert (merges > 0) == (overlay_max == 30)


def body_overlay_leaves_the_base(path):
    from firmware.denylist import DenyList

    d = DenyList(path, 20)
    d.apply(1, [i.to_bytes(2, "big") * 8 for i in range(100)])  # more than the overlay holds: a base
    with open(path, "rb") as f:
        base = f.read()
    d.apply(2, [b"\xee" * 16], [(3).to_bytes(2, "big") * 8])
    d.apply(3, [b"\xef" * 16])
    with open(path, "rb") as f:
        same = f.read() == base
    removed = (3).to_bytes(2, "big") * 8
    return [same, getattr(d, "merges", 0), d.version, d.count, d.contains(b"\xee" * 16), d.contains(removed)]


def test_a_small_delta_does_not_rewrite_the_base(runtime, tmp_path):
    got = runtime.run(body_overlay_leaves_the_base, str(tmp_path / "deny.bin"))
    assert got == [True, 1, 3, 101, True, False]


@pytest.mark.parametrize("damage", ["magic", "truncated", "overlay"])
def test_a_damaged_file_is_reported(runtime, tmp_path, damage):
    path = str(tmp_path / "deny.bin")
    runtime.run(body_apply_and_search, path, [(1, [tok(1), tok(2)], [])], [], 1)  # a base
    runtime.run(body_apply_and_search, path, [(2, [tok(3)], [])], [], 10)  # and an overlay
    target = path + ".ovl" if damage == "overlay" else path
    data = bytearray(open(target, "rb").read())
    if damage == "truncated":
        data = data[:-5]
    else:
        data[0] ^= 0xFF
    open(target, "wb").write(bytes(data))
    message = runtime.run(body_damaged, path)
    assert message is not None and ("header" in message or "bytes" in message)


def test_a_list_in_the_old_format_is_converted(runtime, tmp_path):
    path = str(tmp_path / "deny.bin")
    tokens = sorted([tok(4), tok(2), tok(8)])
    open(path, "wb").write(b"ZDL1" + struct.pack("<II", 7, 3) + b"".join(tokens))
    _, version, count, denied, _ = runtime.run(body_apply_and_search, path, [(8, [tok(5)], [tok(2)])],
                                               [tok(i) for i in range(10)])
    assert (version, count) == (8, 3)
    assert [i for i, d in enumerate(denied) if d] == [4, 5, 8]
    assert open(path, "rb").read(4) == b"ZDL2"


def body_staged(path, stage, bundles):
    """apply_staged of each bundle; the error or the state after it."""
    from firmware.denylist import DenyList, DenyListError
    from protocol import bundle

    d = DenyList(path)
    out = []
    for data in bundles:
        with open(stage, "wb") as f:
            f.write(data)
        base, to, n_add, n_remove = bundle.deny_head(data[: bundle.HEAD], len(data))
        try:
            d.apply_staged(stage, bundle.HEAD, to, n_add, n_remove, bundle.ordered(data))
            out.append([d.version, d.count])
        except DenyListError as e:
            out.append(str(e))
    return out, [d.contains(bytes([i]) * 16) for i in range(8)]


def test_staged_bundles_old_and_new_and_out_of_order(runtime, tmp_path):
    from protocol import bundle

    def t(i):
        return bytes([i]) * 16

    old = b"ZDD1" + struct.pack("<IIII", 0, 1, 3, 0) + t(5) + t(1) + t(3)  # any order in the old format
    new = bundle.deny_delta(1, 2, [t(6), t(2)], [t(1)])
    assert new[:4] == b"ZDD2"
    disorder = b"ZDD2" + struct.pack("<IIII", 2, 3, 2, 0) + t(7) + t(4)
    out, denied = runtime.run(body_staged, str(tmp_path / "deny.bin"), str(tmp_path / "stage.bin"),
                              [old, new, disorder])
    assert out[:2] == [[1, 3], [2, 4]]
    assert "ascending" in out[2]  # refused with its reason, the list unchanged
    assert [i for i, d in enumerate(denied) if d] == [2, 3, 5, 6]
    assert sorted(os.listdir(tmp_path)) == ["deny.bin.ovl", "stage.bin"]  # no half-written file left


def body_big_list(path, n):
    import gc
    import struct

    from firmware.denylist import DenyList

    stage = path + ".stage"
    with open(stage, "wb") as f:  # a delta far larger than the heap, streamed from flash
        f.write(b"ZDD2" + struct.pack("<IIII", 0, 1, n, 0))
        for i in range(n):
            f.write(i.to_bytes(4, "big") * 4)
    d = DenyList(path)
    d.apply_staged(stage, 20, 1, n, 0, True)
    gc.collect()
    mem = getattr(gc, "mem_alloc", None)  # MicroPython only: CPython reports 0 growth
    before = mem() if mem else 0
    hits = sum(1 for i in range(0, n, 97) if d.contains(i.to_bytes(4, "big") * 4))
    misses = sum(1 for i in range(n, n + 50) if d.contains(i.to_bytes(4, "big") * 4))
    gc.collect()
    return d.count, hits, misses, (mem() if mem else 0) - before


def test_ram_does_not_grow_with_the_list(runtime, tmp_path):
    count, hits, misses, grown = runtime.run(body_big_list, str(tmp_path / "deny.bin"), 20000)
    assert (count, hits, misses) == (20000, len(range(0, 20000, 97)), 0)
    assert grown < 2048  # searching 20 000 entries keeps nothing of them in RAM


def body_decider_refuses_denied_cards(path, salt, blocked_code, other_code, blocked_pan):
    from firmware import decision
    from firmware.denylist import DenyList
    from protocol import crypto, record, tokens

    deny = DenyList(path)
    deny.apply(1, [tokens.token(salt, blocked_pan)])
    d = decision.Decider(salt, deny=deny, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    refused = d.decide(blocked_code)
    other = d.decide(other_code)
    return (refused.outcome == decision.DECLINE, refused.reason == record.REASON_DENY_LISTED,
            other.outcome == decision.ACCEPT)


def test_a_card_the_acquirer_declined_is_refused_at_its_next_tap(runtime, tmp_path):
    from protocol import cpm

    blocked, other = "6212345678901234569", "6228480000000000018"
    got = runtime.run(body_decider_refuses_denied_cards, str(tmp_path / "deny.bin"), b"s" * 16,
                      cpm.encode(blocked, atc=9), cpm.encode(other, atc=9), blocked)
    assert got == (True, True, True)
