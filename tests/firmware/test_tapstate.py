"""firmware/tapstate.py on both runtimes: entries kept across a reboot, the bound per bucket (oldest
last tap goes), damaged and half-written buckets, replay of journal records the state missed, and
power cuts at every flash operation of a write on littlefs over a NOR flash model (MicroPython only)."""

import pytest


def tok(i):
    """A 16-byte token; its first byte picks the bucket (i % 256)."""
    return bytes([i % 256]) + (i * 2654435761 % (1 << 32)).to_bytes(4, "big") * 3 + bytes([i // 256, 7, 9])


def body_roundtrip(root, tokens):
    """Entries put, then read back by the same state and by a new one (a reboot)."""
    from firmware.tapstate import Entry, TapState

    s = TapState(root)
    assert s.applied == 0 and s.get(tokens[0]) is None
    for i, t in enumerate(tokens):
        e = Entry()
        e.atc_high, e.last_s, e.day = i * 1000 + 7, 1700000000 + i, 19700 + i
        e.rides, e.paid, e.fen = i, i // 2, i * 200
        e.first_day, e.entries, e.last_entry_s, e.flags = 19000 + i, i % 5, 1700000100 + i, i & 1
        assert s.put(t, e, 10 + i)
    e = Entry()  # a credential with no counter yet (a ticket): atc_high stays -1
    assert s.put(b"\x01" * 16, e, 5)
    ride = Entry()
    ride.atc_high = 4000000000  # ride-code counters are u32
    s.put(b"\x02" * 16, ride, 6)

    def fields(e):
        return None if e is None else [e.atc_high, e.last_s, e.day, e.rides, e.paid, e.fen, e.first_day,
                                       e.entries, e.last_entry_s, e.flags, e.seq]

    before = [fields(s.get(t)) for t in tokens]
    again = TapState(root)
    after = [fields(again.get(t)) for t in tokens]
    return [before == after, after, again.applied, fields(again.get(b"\x01" * 16)),
            fields(again.get(b"\x02" * 16)), again.get(b"\xee" * 16), again.damaged]


def test_entries_survive_a_reboot(runtime, tmp_path):
    tokens = [tok(i) for i in range(0, 200, 3)]
    same, after, applied, blank, ride, missing, damaged = runtime.run(body_roundtrip, str(tmp_path), tokens)
    assert same
    for i, got in enumerate(after):
        assert got == [i * 1000 + 7, 1700000000 + i, 19700 + i, i, i // 2, i * 200, 19000 + i, i % 5,
                       1700000100 + i, i & 1, 10 + i]
    assert applied == 10 + len(tokens) - 1
    assert blank == [-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]
    assert ride[0] == 4000000000
    assert missing is None and damaged == 0


def body_bound(root, n):
    """`n` credentials of one bucket, each tapped later than the one before, then the first one again."""
    import os

    from firmware import tapstate
    from firmware.tapstate import Entry, TapState

    s = TapState(root)
    for i in range(n):
        e = Entry()
        e.last_s = 1000 + i
        s.put(bytes([5]) + i.to_bytes(4, "big") + bytes(11), e, i + 1)
    kept = [i for i in range(n) if s.get(bytes([5]) + i.to_bytes(4, "big") + bytes(11)) is not None]
    size = os.stat(s._path(5 * tapstate.BUCKETS >> 8))[6]
    return [kept, size, tapstate.PER_BUCKET, tapstate.MAX_FILE]


def test_a_full_bucket_forgets_the_credential_tapped_longest_ago(runtime, tmp_path):
    kept, size, per_bucket, max_file = runtime.run(body_bound, str(tmp_path), 100)
    assert per_bucket == 96
    assert kept == list(range(4, 100))  # the four oldest made room for the last four
    assert size == max_file <= 4096  # one flash block


def body_damage(root, t):
    """A bucket cut before its rename (a stale .new beside it), then a bucket with garbage."""
    from firmware.tapstate import Entry, TapState

    s = TapState(root)
    e = Entry()
    e.atc_high = 41
    s.put(t, e, 3)
    path = s._path(t[0] * 32 >> 8)
    with open(path + ".new", "wb") as f:  # a rewrite the power cut stopped before its rename
        f.write(b"ZS\x01\x00\x09\x00\x00\x00" + bytes(17))
    s = TapState(root)
    kept = s.get(t).atc_high
    e.atc_high = 42
    s.put(t, e, 4)  # the next write replaces the stale temporary file
    s = TapState(root)
    later = s.get(t).atc_high
    with open(path, "wb") as f:
        f.write(b"garbage")
    s = TapState(root)
    return [kept, later, s.get(t), s.damaged, s.applied]


def test_a_write_cut_before_its_rename_leaves_the_old_bucket_and_garbage_reads_empty(runtime, tmp_path):
    assert runtime.run(body_damage, str(tmp_path), tok(77)) == [41, 42, None, 1, 0]


def body_replay(root, taps, put_upto):
    """Taps journalled on a NOR flash model; the state took only the first `put_upto` (the power was cut
    before the rest reached it); a reboot replays the journal into the state, twice (idempotent)."""
    from firmware.journal import Journal
    from firmware.tapstate import Entry, TapState
    from host_sim.device.norflash import NorFlash
    from protocol import record

    def account(e, rec):
        if rec["decision"] != record.ACCEPTED:
            return None
        if e is None:
            e = Entry()
        e.rides += 1
        e.fen += rec["amount"]
        e.atc_high = max(e.atc_high, int.from_bytes(rec["ext"][record.EXT_ATC], "big"))
        e.last_s = rec["time"]
        return e

    dev = NorFlash(8)
    j = Journal(dev, b"k" * 32).open()
    s = TapState(root)
    for n, (token, atc, accepted) in enumerate(taps):
        def build(seq, token=token, atc=atc, accepted=accepted):
            return record.encode(b"TERM0001", seq, 1700000000 + seq, record.KIND_QR_CPM, 200, 156,
                                 record.ACCEPTED if accepted else record.DECLINED, 0, 1, token,
                                 [(record.EXT_ATC, atc.to_bytes(2, "big"))])
        seq = j.append(build)
        if n < put_upto:
            s.put(token, account(s.get(token), record.decode(build(seq))) or Entry(), seq)
    j.ack(3)  # the host has the first three already: the uplink may have freed them
    j = Journal(dev, b"k" * 32).open()
    s = TapState(root)
    applied = s.applied
    first = s.replay(j, account)
    second = TapState(root).replay(j, account)
    s = TapState(root)
    out = []
    for token in sorted(set(t[0] for t in taps)):
        e = s.get(token)
        out.append([e.rides, e.fen, e.atc_high, e.seq])
    return [applied, first, second, s.applied, out]


def test_a_reboot_replays_the_taps_the_state_missed_once(runtime, tmp_path):
    a, b = tok(1), tok(2)
    taps = [(a, 5, True), (b, 9, True), (a, 6, True), (b, 10, False), (a, 7, True), (b, 11, True)]
    applied, first, second, now, entries = runtime.run(body_replay, str(tmp_path), taps, 2)
    assert applied == 2
    assert first == 3 and second == 0  # seq 3 (a), 5 (a), 6 (b); seq 4 was a decline
    assert now == 6
    assert entries == [[3, 600, 7, 5], [2, 400, 11, 6]]


def body_cut(cut_after, before, after):
    """One put with the power cut at littlefs flash operation `cut_after` of it (-1: never); then the
    entry a reboot reads.  None where there is no littlefs."""
    try:
        import vfs
    except ImportError:
        return None
    import gc

    from firmware.tapstate import Entry, TapState
    from host_sim.device.norflash import CutDevice as Cut
    from host_sim.device.norflash import NorFlash

    gc.collect()
    chip = NorFlash(16)
    vfs.VfsLfs2.mkfs(chip)
    dev = Cut(chip, -1)
    vfs.mount(vfs.VfsLfs2(dev), "/cut")
    token = b"\x33" * 16
    s = TapState("/cut")
    for i in range(40):  # a bucket with neighbours in it
        e = Entry()
        e.atc_high = i
        s.put(b"\x33" + i.to_bytes(2, "big") + bytes(13), e, i + 1)
    e = Entry()
    e.atc_high = before
    s.put(token, e, 50)
    ops = dev.ops
    programs, erases = chip.programs, chip.erases
    dev.at = cut_after
    e.atc_high = after
    s.put(token, e, 51)
    ops = dev.ops - ops
    cost = [chip.programs - programs, chip.erases - erases]
    vfs.umount("/cut")
    vfs.mount(vfs.VfsLfs2(Cut(chip, -1)), "/cut")
    try:
        s = TapState("/cut")
        got = s.get(token)
        neighbours = [s.get(b"\x33" + i.to_bytes(2, "big") + bytes(13)).atc_high for i in range(40)]
        return [ops, cost, got.atc_high, got.seq, s.applied, neighbours == list(range(40))]
    finally:
        vfs.umount("/cut")


def test_a_power_cut_anywhere_in_a_write_leaves_the_old_entry_or_the_new(sim_runtime):
    uncut = sim_runtime.run(body_cut, -1, 10, 11)
    if uncut is None:
        pytest.skip("no littlefs on this runtime")
    ops, cost, atc, seq, applied, neighbours = uncut
    assert (atc, seq, applied, neighbours) == (11, 51, 51, True) and ops > 0
    assert cost[0] >= 1
    results = sim_runtime.run_many(body_cut, [(n, 10, 11) for n in range(ops + 1)])
    seen = set()
    for n, (_, _, atc, seq, applied, neighbours) in enumerate(results):
        assert (atc, seq, applied) in ((10, 50, 50), (11, 51, 51)), n
        assert neighbours, n
        seen.add(atc)
    assert seen == {10, 11}
