"""firmware/journal.py on both runtimes, over a bytearray-backed NOR flash (host_sim/device/norflash.py):
sequence numbers, pending batches, acknowledgement and its persistence, reclaiming acknowledged
sectors, a full journal, the flash costs of a tap, recovery from power cuts at every step, from bit
flips, bad sector headers and torn or missing watermarks, and RAM on a 128k heap.

A reboot is a new Journal over the same chip bytes ("reboot" op); damage is done to the bytes in the
body, between two journals.  Record contents depend only on their sequence number, so every record
read back is checked in full.
"""

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

PER_SECTOR_120 = 32  # 120-byte records (127-byte entries) in a 4096-byte sector after its 16-byte header

# --- bodies --------------------------------------------------------------------------------------


def body_journal(blocks, ops, fixed=False):
    """A journal on a fresh chip of `blocks` 4 KB blocks; run `ops`, one answer per op.

    ("append", n)               -> the n sequence numbers append() returned (or "full" when refused)
    ("pending", limit, nbytes)  -> sequence numbers of pending(limit, nbytes), each record checked
    ("all",)                    -> sequence numbers of everything pending
    ("ack", seq)                -> None
    ("prepare",)                -> how many prepare() steps did work until it had nothing left
    ("state",)                  -> (next_seq, acked, depth(), torn, damaged, bad_headers, watermark_errors)
    ("room",)                   -> (free, full)
    ("reboot",)                 -> ("state",) of a new Journal(...).open() on the same bytes
    ("locate", seq)             -> flash address of the entry holding seq
    ("flip", addr, bit)         -> None: one bit error
    ("poke", addr, data)        -> None: overwrite bytes (damage, not a NOR program)
    ("erase", block)            -> None
    ("costs", n)                -> (page programs, erases) of n appends
    ("recent", n)               -> sequence numbers of recent(n)
    ("after", seq, room)        -> (sequence numbers of read_after(seq, ..., room, terminal), each record
                                   checked, the RECORDS body size they make, the MACs checked meanwhile);
                                   seq -1: after the last record an earlier "after" handed out
    ("churn", rounds, n, prep)  -> None: `rounds` times: n appends, an ACK of all, prepare() if prep
    """
    import gc

    from firmware.journal import Journal, JournalFull
    from host_sim.device.norflash import NorFlash
    from protocol import record

    KEY = b"k" * 32

    def build(seq):
        # the size varies with seq (48..107 bytes) so that max_bytes cuts in different places
        n = 74 if fixed else (seq * 37) % 60
        ext = bytes([(seq + i) & 0xFF for i in range(n)])
        return record.encode(
            b"TERM0001",
            seq,
            1700000000 + seq,
            record.KIND_QR_CPM,
            200,
            156,
            record.ACCEPTED,
            record.REASON_NONE,
            1,
            bytes([seq & 0xFF]) * 16,
            [(9, ext)],
        )

    def seqs_of(batch):
        out = []
        for rec in batch:
            assert isinstance(rec, bytes)
            seq = record.seq_of(rec)
            assert rec == build(seq), seq
            out.append(seq)
        return out

    def state(j):
        return (j.next_seq, j.acked, j.depth(), j.torn, j.damaged, j.bad_headers, j.watermark_errors)

    dev = NorFlash(blocks)
    j = Journal(dev, KEY).open()
    out = []
    handed = 0
    for op in ops:
        name = op[0]
        if name == "append":
            got = []
            for _ in range(op[1]):
                try:
                    got.append(j.append(build))
                except JournalFull:
                    got.append("full")
                    break
            out.append(got)
        elif name == "pending":
            batch = j.pending(op[1], op[2])
            assert sum(len(r) for r in batch) <= op[2]
            out.append(seqs_of(batch))
        elif name == "all":
            # what pending() would hand out batch by batch, without holding every record at once
            seqs = []
            for _, buf, p, n, seq, _ in j._walk():
                if seq > j.acked:
                    assert bytes(buf[p + 1 : p + 1 + n]) == build(seq), seq
                    seqs.append(seq)
            out.append(seqs)
        elif name == "ack":
            out.append(j.ack(op[1]))
        elif name == "prepare":
            n = 0
            while j.prepare():
                n += 1
            out.append(n)
        elif name == "state":
            out.append(state(j))
        elif name == "room":
            out.append((j.free, j.full))
        elif name == "reboot":
            j = None  # the old journal's buffers go before the new one allocates its own (128k heap)
            gc.collect()
            j = Journal(dev, KEY).open()
            out.append(state(j))
        elif name == "locate":
            found = None
            for block, _, p, _, seq, _ in j._walk():
                if seq == op[1]:
                    found = block * 4096 + p
            out.append(found)
        elif name == "flip":
            out.append(dev.flip(op[1], op[2]))
        elif name == "poke":
            dev.data[op[1] : op[1] + len(op[2])] = op[2]
            out.append(None)
        elif name == "erase":
            out.append(dev.ioctl(6, op[1]))
        elif name == "costs":
            p, e = dev.programs, dev.erases
            for _ in range(op[1]):
                j.append(build)
            out.append((dev.programs - p, dev.erases - e))
        elif name == "churn":
            for _ in range(op[1]):
                for _ in range(op[2]):
                    j.append(build)
                j.ack(j.next_seq - 1)
                if op[3]:
                    while j.prepare():
                        pass
            out.append(None)
        elif name == "recent":
            out.append([record.seq_of(r) for r in j.recent(op[1])])
        elif name == "after":
            macs = [0]
            mac = j._mac

            def counted(data, mac=mac, macs=macs):
                macs[0] += 1
                return mac(data)

            j._mac = counted
            batch = j.read_after(handed if op[1] < 0 else op[1], bytearray(2 * op[2]), op[2], b"TERM0001")
            j._mac = mac
            recs = [bytes(r) for r in batch]
            if recs:
                handed = record.seq_of(recs[-1])
            # the RECORDS body they make: every record carries TERM0001, so its id is elided (protocol/link.py)
            out.append((seqs_of(recs), 2 + sum(1 + len(r) - 8 for r in recs) if recs else 0, macs[0]))
            recs = batch = None
            gc.collect()
        else:
            raise ValueError(name)
    return out


def body_cuts(blocks, cut_after, script):
    """Run `script` (appends, acks, prepares) with the power failing after `cut_after` flash operations,
    then reboot and report (told accepted, host acked, recovered next_seq, acked, pending, new seq)."""
    from firmware.journal import Journal
    from host_sim.device.norflash import NorFlash, PowerCut
    from protocol import record

    KEY = b"k" * 32

    def build(seq):
        return record.encode(
            b"TERM0001",
            seq,
            1700000000 + seq,
            1,
            200,
            156,
            1,
            0,
            1,
            bytes([seq & 0xFF]) * 16,
            [(9, bytes([seq & 0xFF]) * 70)],
        )

    dev = NorFlash(blocks)
    j = Journal(dev, KEY).open()
    told = []
    host_acked = 0
    dev.cut_after = cut_after
    try:
        for op, arg in script:
            if op == "append":
                for _ in range(arg):
                    told.append(j.append(build))
            elif op == "ack":
                host_acked = max(host_acked, arg)
                j.ack(arg)
            else:
                while j.prepare():
                    pass
    except PowerCut:
        pass
    dev.reboot()
    j = Journal(dev, KEY).open()
    got = []
    for rec in j.pending(100000, 1 << 30):
        assert rec == build(record.seq_of(rec))
        got.append(record.seq_of(rec))
    new = j.append(build)
    return told, host_acked, j.next_seq, j.acked, got, new, j.torn


def body_ram(blocks, rounds):
    """Wrap a small chip many times; heap in use after open() must not depend on how many records."""
    import gc

    from firmware.journal import Journal
    from host_sim.device.norflash import NorFlash
    from protocol import record

    KEY = b"k" * 32

    def build(seq):
        return record.encode(b"TERM0001", seq, 1700000000, 1, 200, 156, 1, 0, 1, bytes(16), [(9, bytes(70))])

    dev = NorFlash(blocks)
    used = []
    for r in rounds:
        gc.collect()
        before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
        j = Journal(dev, KEY).open()
        j.pending(10, 4096)
        gc.collect()
        used.append((gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0) - before)
        for i in range(r):
            j.append(build)
            if i % 6 == 5:
                j.ack(j.next_seq - 1)
                j.prepare()
        del j
    return used


# --- helpers (CPython side) ---------------------------------------------------------------------------


def size_of(seq):
    return 44 + 2 + (seq * 37) % 60


def expected_pending(unacked, limit, max_bytes):
    out, total = [], 0
    for seq in unacked:
        if len(out) >= limit or total + size_of(seq) > max_bytes:
            break
        out.append(seq)
        total += size_of(seq)
    return out


# --- sequence numbers and pending -----------------------------------------------------------------------


def test_append_returns_increasing_seqs_and_a_reboot_continues(sim_runtime):
    got = sim_runtime.run(body_journal, 8, [("state",), ("append", 20), ("state",), ("reboot",), ("append", 3)])
    assert got[0] == (1, 0, 0, 0, 0, 0, 0)
    assert got[1] == list(range(1, 21))
    assert got[2] == got[3] == (21, 0, 20, 0, 0, 0, 0)
    assert got[4] == [21, 22, 23]


def test_pending_order_limit_and_max_bytes(sim_runtime):
    queries = [
        (100, 100000),
        (0, 100000),
        (1, 100000),
        (5, 100000),
        (100, 0),
        (100, size_of(1)),
        (100, size_of(1) - 1),
        (100, size_of(1) + size_of(2)),
        (7, 400),
    ]
    queries += draw_examples(st.tuples(st.integers(0, 40), st.integers(0, 3000)), count=40)
    ops = [("append", 90)] + [("pending", limit, nbytes) for limit, nbytes in queries]  # 90: three sectors
    got = sim_runtime.run(body_journal, 8, ops)
    assert got[0] == list(range(1, 91))
    for (limit, nbytes), seqs in zip(queries, got[1:]):
        assert seqs == expected_pending(range(1, 91), limit, nbytes), (limit, nbytes)


def test_pending_skips_acknowledged_records(sim_runtime):
    ops = [("append", 90)]
    acks = [0, 3, 8, 9, 40, 41, 72, 89, 90]
    for seq in acks:
        ops += [("ack", seq), ("pending", 10, 100000), ("pending", 100, 700)]
    got = sim_runtime.run(body_journal, 8, ops)
    for i, seq in enumerate(acks):
        assert got[2 + 3 * i] == expected_pending(range(seq + 1, 91), 10, 100000), seq
        assert got[3 + 3 * i] == expected_pending(range(seq + 1, 91), 100, 700), seq


def test_recent_gives_the_newest_records(sim_runtime):
    ops = [("recent", 4), ("append", 10), ("recent", 4), ("reboot",), ("recent", 20)]
    ops += [("append", 30), ("reboot",), ("recent", 32), ("recent", 3)]  # 40 records: the head sector has 8
    got = sim_runtime.run(body_journal, 5, ops, True)
    assert got[0] == [] and got[2] == [7, 8, 9, 10] and got[4] == list(range(1, 11))
    assert got[7] == list(range(9, 41))  # across the sector boundary
    assert got[8] == [38, 39, 40]


# --- acknowledgement and reclaim ----------------------------------------------------------------------------


def test_ack_persists_across_reboot_and_never_moves_back(sim_runtime):
    got = sim_runtime.run(
        body_journal, 8, [("append", 20), ("ack", 12), ("reboot",), ("all",), ("ack", 5), ("ack", 12), ("reboot",)]
    )
    assert got[2] == (21, 12, 8, 0, 0, 0, 0)
    assert got[3] == list(range(13, 21))
    assert got[6] == (21, 12, 8, 0, 0, 0, 0)


def test_ack_beyond_the_last_record_is_clamped(sim_runtime):
    got = sim_runtime.run(body_journal, 8, [("append", 5), ("ack", 1000), ("state",), ("append", 1), ("reboot",)])
    assert got[2][:3] == (6, 5, 0)
    assert got[3] == [6]  # not 1001: a bogus ACK must not make sequence numbers jump
    assert got[4][:2] == (7, 5)


def test_many_acks_switch_watermark_sectors(sim_runtime):
    # 600 ACKs: more than one watermark sector holds (255 slots), so the ping-pong switches twice
    ops = [("churn", 300, 1, False), ("churn", 300, 1, True), ("reboot",), ("all",)]
    got = sim_runtime.run(body_journal, 8, ops)
    assert got[-2] == (601, 600, 0, 0, 0, 0, 0)
    assert got[-1] == []


def test_acknowledged_sectors_are_reclaimed_and_the_ring_wraps(sim_runtime):
    # 6 ring sectors of ~45 records: 2000 records wrap the ring many times when the host keeps up
    ops = [("churn", 100, 20, True), ("state",), ("room",), ("reboot",), ("append", 2)]
    got = sim_runtime.run(body_journal, 8, ops)
    assert got[-4] == (2001, 2000, 0, 0, 0, 0, 0)
    free, full = got[-3]
    assert not full and free > 4 * 4080
    assert got[-2] == (2001, 2000, 0, 0, 0, 0, 0)
    assert got[-1] == [2001, 2002]


def test_seq_never_repeats_after_everything_was_acked_and_reclaimed(sim_runtime):
    ops = [
        ("append", 200),
        ("ack", 200),
        ("prepare",),
        ("reboot",),
        ("append", 1),
        ("erase", 0),
        ("erase", 1),
        ("reboot",),
        ("append", 1),
    ]
    got = sim_runtime.run(body_journal, 8, ops)
    assert got[3][0] == 201 and got[4] == [201]
    # even with the watermark sectors erased, the newest sector's header and records keep the count
    assert got[7][0] == 202 and got[8] == [202]
    assert got[7][6] >= 1  # the missing watermark is reported


# --- costs of a tap -----------------------------------------------------------------------------------------


def test_a_tap_programs_at_most_two_pages_and_never_erases_when_prepared(sim_runtime):
    ops = [("prepare",)]
    for _ in range(10):
        ops += [("costs", 16), ("ack", 10**6), ("prepare",)]
    got = sim_runtime.run(body_journal, 8, ops, True)  # 120-byte records
    costs = got[1::3]
    assert all(e == 0 for _, e in costs), costs
    programs = sum(p for p, _ in costs)
    assert programs <= 2 * 160 and programs < 1.8 * 160, programs  # one or two pages, a header per sector
    assert sum(got[3::3]) >= 4  # prepare() erased the sectors ahead of need (160 records: 5 sectors)


def test_without_prepare_the_journal_still_appends(sim_runtime):
    # nobody called prepare(): append() erases itself (counted) rather than refuse a tap
    got = sim_runtime.run(body_journal, 8, [("costs", 200), ("all",)])
    assert got[0][1] >= 2 and got[1] == list(range(1, 201))


# --- a full journal ---------------------------------------------------------------------------------------


def test_full_journal_refuses_before_overwriting_anything(sim_runtime):
    ops = [("prepare",), ("room",)]
    ops += [("append", 170), ("room",), ("append", 50), ("room",), ("all",), ("reboot",), ("room",), ("all",)]
    ops += [("ack", 100), ("prepare",), ("room",), ("append", 5)]
    got = sim_runtime.run(body_journal, 8, ops, True)
    free0, full0 = got[1]
    assert not full0 and free0 == 6 * 4080
    assert got[2] == list(range(1, 171)) and got[3][1] is True  # near the end: full ...
    appended = got[4]
    assert appended[-1] == "full"  # ... and append() refuses once nothing is left
    last = appended[-2] if len(appended) > 1 else 170
    assert last == 6 * PER_SECTOR_120  # every byte of the ring used, nothing overwritten
    assert got[5] == (got[5][0], True) and got[5][0] < 127
    assert got[6] == list(range(1, last + 1))
    assert got[8][1] is True and got[9] == list(range(1, last + 1))
    assert got[12][1] is False  # the host acknowledged: sectors reclaimed, room again
    assert got[13] == list(range(last + 1, last + 6))


# --- power cuts ---------------------------------------------------------------------------------------------


SCRIPT = [
    ("prepare", 0),
    ("append", 40),
    ("ack", 30),
    ("prepare", 0),
    ("append", 40),
    ("ack", 75),
    ("append", 40),
    ("prepare", 0),
    ("append", 5),
]


def test_power_cut_at_every_flash_operation(sim_runtime):
    """Like littlefs's power-loss tests: one run per operation the script performs, cut right there."""
    uncut = sim_runtime.run(body_cuts, 8, -1, SCRIPT)
    assert uncut[0] == list(range(1, 126)) and uncut[5] == 126
    results = sim_runtime.run_many(body_cuts, [(8, n, SCRIPT) for n in range(0, 200)])
    for n, (told, host_acked, _, acked, got, new, torn) in enumerate(results):
        assert acked <= host_acked, n  # never an ACK the host did not send
        missing = [s for s in told if s > host_acked and s not in got]
        assert missing == [], (n, missing)  # everything signalled as accepted is still there
        assert got == sorted(set(got)), n  # exactly once, in order
        assert new > max(told + got + [0]), (n, new)  # a new record never reuses a number
        assert torn <= 1


# --- damage -------------------------------------------------------------------------------------------------


def test_bit_flip_in_a_record_is_reported_and_the_rest_uploads(sim_runtime):
    cases = [(10, 30), (10, 0), (10, 13), (1, 60), (45, 2)]  # a byte of the body, the length, the seq
    located = sim_runtime.run_many(body_journal, [(8, [("append", 90), ("locate", seq)], True) for seq, _ in cases])
    args = []
    for (_, at), got in zip(cases, located):
        addr = got[1]
        args.append(
            (
                8,
                [
                    ("append", 90),
                    ("flip", addr + at, 3),
                    ("reboot",),
                    ("all",),
                    ("state",),
                    ("append", 2),
                    ("reboot",),
                    ("all",),
                ],
                True,
            )
        )
    for (seq, at), got in zip(cases, sim_runtime.run_many(body_journal, args)):
        intact = [s for s in range(1, 91) if s != seq]
        assert got[3] == intact, (seq, at)  # every other record is still there, in order
        assert got[4][4] == 1, (seq, at)  # the damage is counted (once, however often it is read)
        assert got[5] == [91, 92]
        assert got[7] == intact + [91, 92]


def test_bit_flip_in_the_newest_record_retires_its_number(sim_runtime):
    got = sim_runtime.run(body_journal, 8, [("append", 20), ("locate", 20)], True)
    addr = got[1]
    got = sim_runtime.run(
        body_journal,
        8,
        [("append", 20), ("flip", addr + 40, 0), ("reboot",), ("all",), ("append", 2), ("reboot",), ("all",)],
        True,
    )
    assert got[2][3] == 1  # reported as a torn tail
    assert got[3] == list(range(1, 20))
    assert got[4] == [21, 22]  # 20 may have been signalled and uploaded: never reused
    assert got[5][3] == 0  # the sealed sector is not counted again
    assert got[6] == list(range(1, 20)) + [21, 22]


@pytest.mark.parametrize("sector", [0, 1, 2], ids=["oldest", "middle", "newest"])
def test_bad_sector_header_is_reported_and_its_records_still_upload(sim_runtime, sector):
    got = sim_runtime.run(
        body_journal,
        8,
        [
            ("append", 80),
            ("flip", (2 + sector) * 4096 + 3, 5),
            ("reboot",),
            ("all",),
            ("append", 3),
            ("reboot",),
            ("all",),
        ],
        True,
    )
    assert got[2][5] == 1
    assert got[3] == list(range(1, 81))
    assert got[4] == [81, 82, 83]
    assert got[6] == list(range(1, 84))


def test_torn_or_damaged_watermark_is_reported_and_nothing_is_lost(sim_runtime):
    slot = 4096 * 0 + 16 * 3  # the third ACK's slot in watermark sector 0 (slot 1 is the formatting ack)
    for damage in [("flip", slot + 1, 2), ("poke", slot, b"\x00\x00"), ("flip", 5, 0)]:
        got = sim_runtime.run(
            body_journal,
            8,
            [("append", 50), ("ack", 10), ("ack", 20), damage, ("reboot",), ("all",), ("append", 1)],
            True,
        )
        next_seq, acked, _, _, _, _, wm_errors = got[4]
        assert wm_errors >= 1, damage
        assert acked in (0, 10, 20), damage  # an older watermark at worst: records are sent again
        assert got[5] == list(range(acked + 1, 51)), damage
        assert got[6] == [51]


def test_missing_watermark_after_reclaim_resends_only_what_is_left(sim_runtime):
    got = sim_runtime.run(
        body_journal,
        8,
        [
            ("append", 100),
            ("ack", 70),
            ("prepare",),
            ("append", 100),
            ("ack", 150),
            ("prepare",),
            ("erase", 0),
            ("erase", 1),
            ("reboot",),
            ("all",),
            ("append", 1),
        ],
        True,
    )
    next_seq, acked, _, _, _, _, wm_errors = got[8]
    assert wm_errors >= 1 and next_seq == 201
    assert got[9] == list(range(acked + 1, 201)) and acked <= 150
    assert got[10] == [201]


# --- RAM ---------------------------------------------------------------------------------------------------


def test_ram_does_not_grow_with_records_on_a_128k_heap(sim_runtime):
    used = sim_runtime.run(body_ram, 8, [100, 2000, 100, 0])
    if used[0]:
        # after 100 records, after 2100, after 2200: the same journal state size within a few bytes
        assert max(used[1:]) - used[0] < 512, used
        assert used[0] < 12 * 1024, used


def test_every_damaged_record_is_counted_once(sim_runtime):
    damaged_sets = draw_examples(st.sets(st.integers(1, 88), min_size=1, max_size=12), count=12)
    damaged_sets += [{31, 32, 33}, {1, 2}, {32}, {64, 65}]  # runs of records, sector ends and starts
    args = []
    for seqs in damaged_sets:
        ops = [("append", 90)] + [("flip", entry_span(seq)[0] + 30, 1) for seq in sorted(seqs)]
        ops += [("reboot",), ("all",), ("all",), ("state",)]
        args.append((8, ops, True))
    for seqs, got in zip(damaged_sets, sim_runtime.run_many(body_journal, args)):
        n = 1 + len(seqs)
        assert got[n + 1] == [s for s in range(1, 91) if s not in seqs], seqs
        assert got[n + 3][4] == len(seqs), (got[n + 3], sorted(seqs))  # each record once, however often read


# --- fuzz: random damage anywhere ------------------------------------------------------------------------


def entry_span(seq):
    """Flash addresses of seq's entry in body_journal's fixed-size layout (127-byte entries, 32 a sector)."""
    start = (2 + (seq - 1) // PER_SECTOR_120) * 4096 + 16 + ((seq - 1) % PER_SECTOR_120) * 127
    return start, start + 127


def test_random_damage_never_breaks_recovery_and_spares_intact_records(sim_runtime, fuzz_long):
    damage = st.lists(st.tuples(st.integers(0, 5 * 4096 - 1), st.integers(0, 255)), min_size=1, max_size=6)
    examples = draw_examples(st.tuples(damage, st.integers(0, 90)), count=200 if fuzz_long else 25)
    args = []
    for pokes, ack in examples:
        ops = [("append", 90), ("ack", ack)] + [("poke", a, bytes([v])) for a, v in pokes]
        ops += [("reboot",), ("all",), ("append", 2), ("reboot",), ("all",)]
        args.append((8, ops, True))
    for (pokes, ack), got in zip(examples, sim_runtime.run_many(body_journal, args)):
        n = 2 + len(pokes)
        state, seqs, new, _, again = got[n : n + 5]
        assert seqs == sorted(set(seqs)), pokes  # records are checked in full inside the body
        touched = {a for a, _ in pokes}
        for seq in range(ack + 1, 91):
            lo, hi = entry_span(seq)
            if not any(lo <= a < hi for a in touched):
                assert seq in seqs, (seq, pokes)  # an intact, unacknowledged record is never lost
        assert new[0] > 90 and new == [new[0], new[0] + 1], (new, pokes)
        acked = got[n + 3][1]  # after a second reboot: the same records, the new ones behind them
        assert again == [s for s in seqs if s > acked] + new, (again, seqs, new, pokes)


def test_read_after_hands_out_every_record_once_and_checks_each_mac_once(sim_runtime):
    room = 250
    ops = [("append", 90)] + [("after", -1, room)] * 30 + [("append", 5), ("after", -1, room), ("after", 0, room),
                                                           ("ack", 40), ("after", 0, room), ("after", 1000, room)]
    got = sim_runtime.run(body_journal, 8, ops)
    batches = got[1:31]
    handed = [s for seqs, _, _ in batches for s in seqs]
    assert handed == list(range(1, 91))
    assert all(size <= room for _, size, _ in batches) and all(seqs for seqs, _, _ in batches[:10])
    # the cursor: nothing handed out is read again; only the one record that did not fit a batch is
    # read once more by the next (a walk from the tail each time would check thousands)
    full = [b for b in batches if b[0]]
    assert sum(macs for _, _, macs in batches) <= 90 + len(full)
    more = got[32]
    n = len(more[0])  # appended after the cursor: read on from there
    assert n >= 2 and more[0] == list(range(91, 91 + n)) and more[2] <= n + 1
    again = got[33]
    assert again[0][0] == 1 and again[2] > len(again[0])  # another seq: walked from the tail
    assert got[35][0][0] == 41  # after an ACK, the records after the watermark
    assert got[36][0] == []

