"""The sequence floor (firmware/journal.py raise_floor) and the quarantine (firmware/quarantine.py) on
both runtimes: after the host's AUTH says it holds records up to seq_high, no number at or below it is
ever issued again, across reboots and after damage that made the journal restart lower; records the
host refused are kept on flash, bounded."""

import struct

from protocol import record


def body_floor(ops):
    """ops: ("append", n) -> seqs; ("floor", high) -> raise_floor result; ("reboot",) -> next_seq;
    ("pending",) -> (seq, kind, jump range or None) of every pending record; ("ack", seq);
    ("wreck",) -> None: erase the newest ring sector and both watermark sectors (damage, not a cut)."""
    import gc
    import struct

    from firmware.journal import Journal
    from host_sim.device.norflash import NorFlash
    from protocol import record

    KEY = b"k" * 32
    T = b"TERM0001"

    def build(seq):
        return record.encode(T, seq, 1700000000 + seq, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                             bytes([seq & 0xFF]) * 16, [(9, bytes(60))])

    def jump(first, last, seq):
        return record.encode(T, seq, 1700000000, record.KIND_SEQ_JUMP, 0, 0, 0, 0, 0, record.NO_TOKEN,
                             ((record.EXT_SEQ_JUMP, struct.pack("<II", first, last)),))

    dev = NorFlash(8)
    j = Journal(dev, KEY).open()
    out = []
    for op in ops:
        if op[0] == "append":
            out.append([j.append(build) for _ in range(op[1])])
        elif op[0] == "floor":
            out.append(j.raise_floor(op[1], jump))
        elif op[0] == "ack":
            out.append(j.ack(op[1]))
        elif op[0] == "reboot":
            j = None
            gc.collect()
            j = Journal(dev, KEY).open()
            out.append(j.next_seq)
        elif op[0] == "pending":
            got = []
            for rec in j.pending(1000, 1 << 30):
                r = record.decode(rec)
                ext = r["ext"].get(record.EXT_SEQ_JUMP)
                got.append((r["seq"], r["kind"], None if ext is None else struct.unpack("<II", ext)))
            out.append(got)
        elif op[0] == "wreck":
            dev.ioctl(6, 2 + j._head)
            dev.ioctl(6, 0)
            dev.ioctl(6, 1)
            out.append(None)
        elif op[0] == "find":
            rec = j.find(op[1])
            out.append(None if rec is None else record.seq_of(rec))
    return out


def test_the_floor_retires_numbers_durably_and_the_jump_uploads(sim_runtime):
    got = sim_runtime.run(body_floor, [("append", 20), ("ack", 10), ("floor", 5), ("floor", 100), ("append", 1),
                                       ("reboot",), ("pending",), ("find", 15), ("find", 50), ("find", 101)])
    assert got[2] is None  # below next_seq: nothing to do
    assert tuple(got[3]) == (21, 100, 101)
    assert got[4] == [102]
    assert got[5] == 103  # the jump survived the reboot
    pending = got[6]
    assert [p[0] for p in pending] == list(range(11, 21)) + [101, 102]
    assert tuple(pending[10][:2]) == (101, record.KIND_SEQ_JUMP) and tuple(pending[10][2]) == (21, 100)
    assert got[7:] == [15, None, 101]


def test_a_floor_without_a_later_tap_still_survives_a_reboot(sim_runtime):
    got = sim_runtime.run(body_floor, [("append", 3), ("floor", 40), ("reboot",), ("append", 1)])
    assert got[2:] == [42, [42]]


def test_after_damage_restarts_the_sequence_lower_the_floor_lifts_it_above_the_host(sim_runtime):
    got = sim_runtime.run(body_floor, [("append", 100), ("ack", 100), ("wreck",), ("reboot",), ("floor", 100),
                                       ("append", 5), ("reboot",), ("append", 1)])
    restarted = got[3]
    assert restarted <= 100  # the damage made the journal forget its newest numbers
    assert got[5] == [102, 103, 104, 105, 106] and got[6] == 107 and got[7] == [107]


def body_quarantine(root, n):
    from firmware import quarantine
    from protocol import record

    q = quarantine.Quarantine(root)
    kept = 0
    for i in range(n):
        rec = record.encode(b"TERM0001", i + 1, 1, 1, 200, 156, 1, 0, 1, bytes(16)) if i % 3 else None
        kept += q.keep(i + 1, 1 + i % 4, rec)
    again = quarantine.Quarantine(root)
    entries = again.read()
    return kept, q.overflow, again.entries(), [(s, r, len(b)) for s, r, b in entries[:3]]


def test_the_quarantine_is_bounded_and_survives_a_reboot(runtime, tmp_path):
    kept, overflow, entries, first = runtime.run(body_quarantine, str(tmp_path), 70)
    assert (kept, overflow, entries) == (64, 6, 64)
    assert first[0] == (1, 1, 0) and first[1][:2] == (2, 2) and first[1][2] == 44


def test_a_jump_record_is_a_valid_no_tap_record():
    rec = record.encode(b"TERM0001", 101, 1, record.KIND_SEQ_JUMP, 0, 0, 0, 0, 0, record.NO_TOKEN,
                        ((record.EXT_SEQ_JUMP, struct.pack("<II", 21, 100)),))
    assert not record.is_tap(record.KIND_SEQ_JUMP) and record.decode(rec)["kind"] == record.KIND_SEQ_JUMP
