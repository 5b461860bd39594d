"""Power cuts while a deny-list delta is applied, on littlefs over a NOR flash model (MicroPython only:
CPython has no littlefs).  One run per flash operation the apply performs, the power cut right there;
after the reboot the list must be the old version or the new one, each exactly, and take the next
delta."""

import pytest

BLOCKS = 12
OVERLAY_MAX = 40


def tok(i):
    return (i * 2654435761 % (1 << 32)).to_bytes(4, "big") * 4  # spread over the buckets


BASE_ADD = [tok(i) for i in range(60)]  # more than the overlay holds: a base table
FIRST = ([tok(i) for i in range(60, 70)], [tok(1), tok(2)])  # then an overlay on it
SMALL = ([tok(i) for i in range(70, 80)], [tok(3), tok(61)])  # the delta cut: overlay rewritten
LARGE = ([tok(i) for i in range(80, 120)], [tok(4), tok(62)])  # the delta cut: merged into a new base
NEXT = ([tok(500)], [tok(5)])  # what the rebooted terminal applies afterwards
PROBES = [tok(i) for i in range(130)] + [tok(500)]


def body_cut(blocks, overlay_max, cut_after, steps, delta, after, probes):
    """Apply `steps`, then `delta` with the power cut at flash operation `cut_after` of it (-1: never);
    reboot and report the list, then apply `after` and report again.  None where there is no littlefs.

    The cut is a block device in front of the chip (host_sim/device/norflash.py) that tears the
    operation it falls on (half a program, or an erase not done) and from then on drops every write
    without an error, as a chip without power would: littlefs goes on in RAM but nothing more reaches
    flash, and nothing is raised through littlefs.  The reboot mounts the same chip afresh."""
    try:
        import vfs
    except ImportError:
        return None
    import gc

    from firmware.denylist import DenyList, DenyListError
    from host_sim.device.norflash import CutDevice as Cut
    from host_sim.device.norflash import NorFlash

    gc.collect()  # the previous run's chip: one run after another in the same heap
    chip = NorFlash(blocks)
    vfs.VfsLfs2.mkfs(chip)
    dev = Cut(chip, -1)
    vfs.mount(vfs.VfsLfs2(dev), "/cut")
    d = DenyList("/cut/config/deny.bin", overlay_max)
    v = 0
    for add, remove in steps:
        v += 1
        d.apply(v, add, remove)
    ops = dev.ops
    dev.at = cut_after
    failed = False
    try:
        d.apply(v + 1, delta[0], delta[1])
    except DenyListError:  # littlefs noticed a write that did not happen (a flash error, reported)
        failed = True
    ops = dev.ops - ops
    d.close()  # its files belong to the old mount: not left for a finaliser
    vfs.umount("/cut")
    dev = Cut(chip, -1)  # power back: the chip as the cut left it
    vfs.mount(vfs.VfsLfs2(dev), "/cut")
    try:
        d = DenyList("/cut/config/deny.bin", overlay_max)
        state = [d.version, d.count, [i for i, t in enumerate(probes) if d.contains(t)]]
        d.apply(v + 2, after[0], after[1])
        d.close()
        d = DenyList("/cut/config/deny.bin", overlay_max)
        later = [d.version, d.count, [i for i, t in enumerate(probes) if d.contains(t)]]
        d.close()
        return [failed, ops, state, later]
    finally:
        vfs.umount("/cut")


def model(steps):
    listed = set()
    for add, remove in steps:
        listed = (listed | set(add)) - set(remove)
    return listed


def expect(steps):
    listed = model(steps)
    return [len(steps), len(listed), [i for i, t in enumerate(PROBES) if t in listed]]


@pytest.mark.parametrize("delta", [SMALL, LARGE], ids=["overlay", "merge"])
def test_a_power_cut_anywhere_in_an_apply_leaves_the_old_list_or_the_new(sim_runtime, delta):
    steps = [(BASE_ADD, []), FIRST]
    args = (BLOCKS, OVERLAY_MAX)
    uncut = sim_runtime.run(body_cut, *args, -1, steps, delta, NEXT, PROBES)
    if uncut is None:
        pytest.skip("no littlefs on this runtime")
    failed, ops, state, later = uncut
    assert not failed and ops > 0
    old, new = expect(steps), expect(steps + [delta])
    assert state == new and later == expect(steps + [delta, NEXT])
    results = sim_runtime.run_many(body_cut, [args + (n, steps, delta, NEXT, PROBES) for n in range(ops + 1)])
    seen = set()
    for n, (_, _, state, later) in enumerate(results):
        assert state in (old, new), n  # never a mix, never empty
        seen.add(state == new)
        previous = steps + ([delta] if state == new else [])
        assert later == [len(steps) + 2] + expect(previous + [NEXT])[1:], n  # and the next delta applies
    assert seen == {False, True}  # the cuts fell both before and after the switch


def body_full(blocks, first, big):
    """A delta larger than the free flash: the error, then the list as a reboot reads it back."""
    try:
        import vfs
    except ImportError:
        return None
    import gc
    import os

    from firmware.denylist import DenyList, DenyListError
    from host_sim.device.norflash import NorFlash

    gc.collect()
    chip = NorFlash(blocks)
    vfs.VfsLfs2.mkfs(chip)
    vfs.mount(vfs.VfsLfs2(chip), "/full")
    try:
        d = DenyList("/full/deny.bin", 10)
        d.apply(1, first)
        with open("/full/stage.bin", "wb") as f:  # a sorted delta written piece by piece: no list in RAM
            f.write(b"ZDD2" + (1).to_bytes(4, "little") + (2).to_bytes(4, "little") + big.to_bytes(4, "little")
                    + bytes(4))
            for i in range(big):
                f.write(i.to_bytes(4, "big") * 4)
        error = None
        try:
            d.apply_staged("/full/stage.bin", 20, 2, big, 0, True)
        except DenyListError as e:
            error = str(e)
        d.close()
        again = DenyList("/full/deny.bin", 10)
        state = [again.version, again.count, [again.contains(t) for t in first]]
        again.close()
        return [error, state, sorted(os.listdir("/full"))]
    finally:
        vfs.umount("/full")


def test_a_delta_the_flash_has_no_room_for_is_refused_with_its_reason(sim_runtime):
    first = [tok(i) for i in range(20)]
    got = sim_runtime.run(body_full, BLOCKS, first, 1500)  # 24 KB staged, 9 KB more for the new base
    if got is None:
        pytest.skip("no littlefs on this runtime")
    error, state, files = got
    assert error is not None and "not written" in error and "v1 stays" in error
    assert state == [1, 20, [True] * 20]
    assert files == ["deny.bin", "stage.bin"]  # the half-written table deleted
