"""The file-backed deny list on both runtimes: versions, deltas, binary search, damage, RAM."""

import os
import random

import pytest


def body_apply_and_search(path, steps, probes):
    """Apply (version, add, remove) steps; return the list state and which probes are denied."""
    from firmware.denylist import DenyList

    d = DenyList(path)
    applied = [d.apply(v, add, remove) for v, add, remove in steps]
    again = DenyList(path)  # what a reboot reads back
    return applied, again.version, again.count, [again.contains(t) for t in probes]


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
    applied, version, count, denied = runtime.run(body_apply_and_search, path, steps, probes)
    assert applied == [True, False, True, False]
    assert (version, count) == (3, 3)
    assert [i for i, d in enumerate(denied) if d] == [3, 5, 9]
    assert os.path.getsize(path) == 12 + 3 * 16


def test_matches_a_python_set_for_random_deltas(runtime, tmp_path):
    rng = random.Random(5)
    path = str(tmp_path / "deny.bin")
    model, steps = set(), []
    for version in range(1, 8):
        add = [rng.randbytes(16) for _ in range(rng.randrange(0, 40))]
        remove = rng.sample(sorted(model), min(len(model), rng.randrange(0, 5)))
        steps.append((version, add, remove))
        model = (model | set(add)) - set(remove)
    probes = sorted(model)[:50] + [rng.randbytes(16) for _ in range(50)]
    _, version, count, denied = runtime.run(body_apply_and_search, path, steps, probes)
    assert (version, count) == (7, len(model))
    assert denied == [p in model for p in probes]


@pytest.mark.parametrize("damage", ["magic", "truncated"])
def test_a_damaged_file_is_reported(runtime, tmp_path, damage):
    path = str(tmp_path / "deny.bin")
    runtime.run(body_apply_and_search, path, [(1, [tok(1), tok(2)], [])], [])
    data = bytearray(open(path, "rb").read())
    if damage == "magic":
        data[0] ^= 0xFF
    else:
        data = data[:-5]
    open(path, "wb").write(bytes(data))
    message = runtime.run(body_damaged, path)
    assert message is not None and ("header" in message or "bytes" in message)


def body_big_list(path, n):
    import gc

    from firmware.denylist import DenyList

    d = DenyList(path)
    chunk = 250  # a delta is held in RAM while it is merged: keep each one small on a 128k heap
    for v in range(n // chunk):
        d.apply(v + 1, [(v * chunk + i).to_bytes(4, "big") * 4 for i in range(chunk)])
    gc.collect()
    mem = getattr(gc, "mem_alloc", None)  # MicroPython only: CPython reports 0 growth
    before = mem() if mem else 0
    hits = sum(1 for i in range(0, n, 97) if d.contains(i.to_bytes(4, "big") * 4))
    misses = sum(1 for i in range(n, n + 50) if d.contains(i.to_bytes(4, "big") * 4))
    gc.collect()
    return d.count, hits, misses, (mem() if mem else 0) - before


def test_ram_does_not_grow_with_the_list(runtime, tmp_path):
    count, hits, misses, grown = runtime.run(body_big_list, str(tmp_path / "deny.bin"), 5000)
    assert (count, hits, misses) == (5000, len(range(0, 5000, 97)), 0)
    assert grown < 2048  # searching 5000 entries keeps nothing of them in RAM


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
