"""firmware/journal.py on both runtimes, on plain files in a temporary directory (on MicroPython the
unix port's VfsPosix): sequence numbers, pending batches, acknowledgement and its persistence, deleting
finished segments, recovery from a damaged tail and from a torn watermark, and RAM on a 128k heap.

Every step that a reboot would separate runs as its own runtime.run call (a new MicroPython process),
on a Journal opened afresh.  Damage is done here on CPython, to the files, between two runs.
Record contents depend only on their sequence number, so every record read back is checked in full.
"""

import os

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

SEGMENT = 8  # records per segment in most tests: small, so that tests cross segment boundaries

# --- bodies --------------------------------------------------------------------------------------


def body_journal(root, segment_records, ops):
    """Open the journal at `root` and run `ops`; one answer per op.

    ("append", n)               -> the n sequence numbers append() returned
    ("pending", limit, nbytes)  -> sequence numbers of pending(limit, nbytes), each record checked
    ("ack", seq)                -> None
    ("state",)                  -> (next_seq, acked, dropped, depth())
    ("files",)                  -> sorted names of the segment files
    ("reopen",)                 -> ("state",) of a new Journal(...).open() on the same directory
    """
    from firmware.journal import Journal
    from protocol import record

    def build(seq):
        # the size varies with seq (46..105 bytes) so that max_bytes cuts in different places
        ext = bytes([(seq + i) & 0xFF for i in range((seq * 37) % 60)])
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

    def state(j):
        return (j.next_seq, j.acked, j.dropped, j.depth())

    j = Journal(root, segment_records).open()
    out = []
    for op in ops:
        name = op[0]
        if name == "append":
            out.append([j.append(build) for _ in range(op[1])])
        elif name == "pending":
            batch = j.pending(op[1], op[2])
            seqs = []
            for rec in batch:
                assert isinstance(rec, bytes)
                seq = record.seq_of(rec)
                assert rec == build(seq), seq
                seqs.append(seq)
            assert sum(len(r) for r in batch) <= op[2]
            out.append(seqs)
        elif name == "ack":
            out.append(j.ack(op[1]))
        elif name == "state":
            out.append(state(j))
        elif name == "files":
            import os

            out.append(sorted(n for n in os.listdir(root) if n.endswith(".seg")))
        elif name == "reopen":
            j = Journal(root, segment_records).open()
            out.append(state(j))
        else:
            raise ValueError(name)
    return out


def body_big(root, count):
    """Append `count` records with the default segment size and reopen, on a small heap."""
    import gc

    from firmware.journal import Journal
    from protocol import record

    def build(seq):  # the same records as body_journal's
        ext = bytes([(seq + i) & 0xFF for i in range((seq * 37) % 60)])
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

    gc.collect()
    j = Journal(root).open()
    last = 0
    for _ in range(count):
        seq = j.append(build)
        assert seq == last + 1, (seq, last)
        last = seq
    del j
    gc.collect()
    free = gc.mem_free() if hasattr(gc, "mem_free") else None
    j = Journal(root).open()
    gc.collect()
    used = None if free is None else free - gc.mem_free()
    first = [record.seq_of(r) for r in j.pending(20, 4096)]
    return j.next_seq, j.depth(), j.dropped, first, used


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


def host_dir(runtime, tmp_path, name="journal"):
    if runtime.name == "board":
        pytest.skip("uses a directory of this host, which a real board cannot see")
    return str(tmp_path / name)


def seg_path(root, first):
    return os.path.join(root, "%08d.seg" % first)


def entry_offsets(path):
    """Start offsets of the entries in a segment file (A5 | length | record | CRC-32)."""
    data = open(path, "rb").read()
    offsets, i = [], 0
    while i < len(data):
        assert data[i] == 0xA5
        offsets.append(i)
        i += 2 + data[i + 1] + 4
    return offsets


# --- sequence numbers and pending -----------------------------------------------------------------------


def test_append_returns_increasing_seqs(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("append", 20), ("state",)])
    assert got == [(1, 0, 0, 0), list(range(1, 21)), (21, 0, 0, 20)]
    # a reboot continues the sequence
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("append", 3)])
    assert got == [(21, 0, 0, 20), [21, 22, 23]]


def test_pending_order_limit_and_max_bytes(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
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
    ops = [("append", 30)] + [("pending", limit, nbytes) for limit, nbytes in queries]
    got = runtime.run(body_journal, root, SEGMENT, ops)
    assert got[0] == list(range(1, 31))
    for (limit, nbytes), seqs in zip(queries, got[1:]):
        assert seqs == expected_pending(range(1, 31), limit, nbytes), (limit, nbytes)


def test_pending_skips_acknowledged_records(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    ops = [("append", 30)]
    acks = [0, 3, 8, 9, 17, 29, 30]
    for seq in acks:
        ops += [("ack", seq), ("pending", 10, 100000), ("pending", 100, 700)]
    got = runtime.run(body_journal, root, SEGMENT, ops)
    for i, seq in enumerate(acks):
        assert got[2 + 3 * i] == expected_pending(range(seq + 1, 31), 10, 100000), seq
        assert got[3 + 3 * i] == expected_pending(range(seq + 1, 31), 100, 700), seq


# --- acknowledgement -------------------------------------------------------------------------------------


def test_ack_persists_across_reopen(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    runtime.run(body_journal, root, SEGMENT, [("append", 20), ("ack", 12)])
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("pending", 100, 100000)])
    assert got == [(21, 12, 0, 8), list(range(13, 21))]
    # an older or repeated ACK does not move the watermark back
    runtime.run(body_journal, root, SEGMENT, [("ack", 5), ("ack", 12)])
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("reopen",)])
    assert got == [(21, 12, 0, 8), (21, 12, 0, 8)]


def test_ack_beyond_the_last_record_is_clamped(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    got = runtime.run(body_journal, root, SEGMENT, [("append", 5), ("ack", 1000), ("state",), ("append", 1)])
    assert got[2] == (6, 5, 0, 0)
    assert got[3] == [6]  # not 1001: a bogus ACK must not make sequence numbers jump


def test_fully_acked_segments_are_deleted(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    ops = [
        ("append", 20),
        ("files",),
        ("ack", 7),
        ("files",),
        ("ack", 8),
        ("files",),
        ("ack", 17),
        ("files",),
        ("pending", 100, 100000),
        ("ack", 20),
        ("files",),
    ]
    got = runtime.run(body_journal, root, SEGMENT, ops)
    names = ["%08d.seg" % first for first in (1, 9, 17)]  # segments of 8 records: 1-8, 9-16, 17-20
    assert got[1] == names
    assert got[3] == names  # record 8 is not acknowledged yet
    assert got[5] == names[1:]
    assert got[7] == names[2:]
    assert got[8] == [18, 19, 20]
    assert len(got[10]) <= 1  # at most the segment still being written stays
    assert sorted(n for n in os.listdir(root) if n.endswith(".seg")) == got[10]


def test_seq_never_repeats_after_everything_was_acked(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    got = runtime.run(body_journal, root, 4, [("append", 10), ("ack", 10), ("files",)])
    assert len(got[2]) <= 1
    seen = set(got[0])
    for _ in range(3):
        got = runtime.run(body_journal, root, 4, [("append", 5), ("ack", 1000), ("pending", 100, 100000)])
        assert not seen & set(got[0]), got[0]
        assert got[0] == sorted(got[0]) and got[0][0] > max(seen)
        assert got[2] == []
        seen |= set(got[0])
    # even with every segment file gone (say a technician cleared them), the watermark still counts
    for name in os.listdir(root):
        if name.endswith(".seg"):
            os.remove(os.path.join(root, name))
    got = runtime.run(body_journal, root, 4, [("append", 2)])
    assert got[0][0] > max(seen)


# --- damage ------------------------------------------------------------------------------------------------


def damage(root, first, how):
    path = seg_path(root, first)
    data = bytearray(open(path, "rb").read())
    last = entry_offsets(path)[-1]
    if how == "garbage":
        data += b"\x13\x37\xa5\x50garbage"
    elif how == "torn":
        del data[len(data) - 3 :]  # the last entry cut short, as by a power cut during the write
    else:
        data[last + how] ^= 0x10  # a byte inside the last entry: magic, length, record or CRC
    open(path, "wb").write(bytes(data))


DAMAGE = ["garbage", "torn", 0, 1, 2, 2 + 12, 2 + 30, -1]  # -1: last CRC byte (offset from the end)


@pytest.mark.parametrize("count", [13, 9, 16], ids=["mid-segment", "first-of-segment", "full-segment"])
def test_damaged_tail_is_detected_and_later_appends_survive(runtime, tmp_path, count):
    """`count` records in segments of 8; the last entry (or the bytes after it) damaged."""
    cases = [(host_dir(runtime, tmp_path, "j%d" % i), how) for i, how in enumerate(DAMAGE)]
    runtime.run_many(body_journal, [(root, SEGMENT, [("append", count)]) for root, _ in cases])
    last_first = ((count - 1) // SEGMENT) * SEGMENT + 1
    for root, how in cases:
        if isinstance(how, int) and how < 0:
            how = os.path.getsize(seg_path(root, last_first)) - entry_offsets(seg_path(root, last_first))[-1] + how
        damage(root, last_first, how)
    ops = [("state",), ("pending", 100, 100000), ("files",), ("append", 3), ("pending", 100, 100000), ("files",)]
    results = runtime.run_many(body_journal, [(root, SEGMENT, ops) for root, _ in cases])
    again = runtime.run_many(
        body_journal, [(root, SEGMENT, [("state",), ("pending", 100, 100000)]) for root, _ in cases]
    )
    for (_, how), got, later in zip(cases, results, again):
        (next_seq, acked, dropped, depth), before, files, new, after, files_after = got
        intact = list(range(1, count + 1)) if how == "garbage" else list(range(1, count))
        assert dropped > 0, how  # the damage is reported ...
        assert before == intact, how  # ... and every intact record before it is still to be sent
        # A sequence number is never reused (record.py): a record damaged after append() returned
        # (the passenger was told "accepted") may already be at the collector, which de-duplicates by
        # (terminal, seq) and would drop a new record under the same number.  A torn last write is the
        # one entry whose append() never returned, so its number may be used again.
        assert new[0] >= count if how == "torn" else new[0] > count, (how, new)
        assert new == list(range(new[0], new[0] + 3))
        assert len(files_after) == len(files) + 1, (how, files, files_after)  # the new records: a new segment
        assert after == intact + new, how
        # after another reboot the new records are still there, behind the damaged segment
        assert later[1] == intact + new, how
        assert later[0][2] > 0 and later[0][0] == new[-1] + 1


def test_damaged_segment_goes_once_acknowledged(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    runtime.run(body_journal, root, SEGMENT, [("append", 12)])
    damage(root, 9, "garbage")
    got = runtime.run(body_journal, root, SEGMENT, [("append", 2), ("ack", 12), ("files",)])
    new = got[0]
    got = runtime.run(
        body_journal, root, SEGMENT, [("ack", new[-1]), ("files",), ("reopen",), ("pending", 100, 100000)]
    )
    assert "%08d.seg" % 9 not in got[1]
    assert got[2][2] == 0  # nothing damaged left
    assert got[3] == []


# --- the watermark -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("torn", [b"", b"\x0c\x00\x00", b"\x0c\x00\x00\x00\x00\x00\x00\x00", b"\x0c" * 12])
def test_torn_watermark_is_reported_and_everything_resent(runtime, tmp_path, torn):
    root = host_dir(runtime, tmp_path)
    runtime.run(body_journal, root, SEGMENT, [("append", 14), ("ack", 5)])
    with open(os.path.join(root, "acked"), "wb") as f:
        f.write(torn)
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("pending", 100, 100000), ("append", 1)])
    next_seq, acked, dropped, depth = got[0]
    assert dropped >= 1 and acked == 0
    assert got[1] == list(range(1, 15))  # re-sent: the collector stores by (terminal, seq) and de-duplicates
    assert got[2] == [15]


def test_torn_watermark_after_segments_were_deleted(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    runtime.run(body_journal, root, SEGMENT, [("append", 20), ("ack", 17)])
    with open(os.path.join(root, "acked"), "wb") as f:
        f.write(b"\xff\xff")
    got = runtime.run(body_journal, root, SEGMENT, [("state",), ("pending", 100, 100000), ("append", 1)])
    assert got[0][1] == 0 and got[0][2] >= 1
    assert got[1] == [17, 18, 19, 20]  # what is left on flash goes again
    assert got[2] == [21]


# --- RAM ---------------------------------------------------------------------------------------------------


def test_2000_records_on_a_small_heap(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    next_seq, depth, dropped, first, used = runtime.run(body_big, root, 2000)
    assert (next_seq, depth, dropped) == (2001, 2000, 0)
    assert first == list(range(1, 21))
    if used is not None:
        assert used < 8 * 1024, used  # open() keeps no per-record state
    # a second process (a reboot) opens it too, acknowledges most of it and frees the segments
    got = runtime.run(body_journal, root, 64, [("state",), ("ack", 1990), ("pending", 100, 100000), ("files",)])
    assert got[0] == (2001, 0, 0, 2000)
    assert got[2] == list(range(1991, 2001))
    assert len(got[3]) <= 2
