"""firmware/declines.py on both runtimes, over the NOR flash model: every declined tap becomes a DECLINED
record (kind, reason, token when known, amount 0, nothing else), identical declines within the window are
coalesced into the next record's repeat count, declines stop at the journal's reserve so accepted taps
keep their room, and a decline because the journal is full is counted, never written.  Also: a declined
record read back after a reboot is not remembered as a paid tap (firmware/decision.py)."""

import struct

import pytest

from protocol import record

TOKEN = bytes(range(16))
OTHER = bytes(range(16, 32))


@pytest.fixture
def rt(sim_runtime):
    return sim_runtime


def body_declines(blocks, ops):
    """A journal on a fresh `blocks`-block NOR chip and its Declines; one answer per op.

    ("decline", kind, reason, token, now_ms)  -> outcome (declines.RECORDED / COALESCED / UNRECORDED)
    ("flood", kind, reason, token, n, step_ms, distinct) -> the outcomes of n declines step_ms apart from 0
                       ms, run-length encoded [[outcome, count], ...] (distinct: token i as 16 big-endian
                       bytes for the i-th instead of `token`)
    ("accept", n)      -> how many accepted records append() took before JournalFull (at most n)
    ("records",)       -> (kind, decision, reason, token, amount, fare_id, ext) of every pending record
    ("counters",)      -> (recorded, coalesced, unrecorded)
    ("room",)          -> (free, full, reserve)
    ("ack",)           -> None: the host stored everything
    """
    from host_sim.device.norflash import NorFlash

    flash = NorFlash(blocks)  # the one big buffer first, while the heap has a hole for it

    from firmware.declines import Declines
    from firmware.journal import Journal, JournalFull
    from protocol import record

    j = Journal(flash, b"k" * 32).open()
    while j.prepare():
        pass
    d = Declines(j, b"TERM0001", 156)

    def accepted(seq):
        return record.encode(b"TERM0001", seq, 1700000000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED,
                             record.REASON_NONE, 1, bytes([seq & 0xFF]) * 16, [(record.EXT_ATC, b"\x00\x01")])

    out = []
    for op in ops:
        name = op[0]
        if name == "decline":
            out.append(d.add(op[1], op[2], op[3], 1700000000, op[4]))
        elif name == "flood":
            runs = []
            for i in range(op[4]):
                token = i.to_bytes(16, "big") if op[6] else op[3]
                got = d.add(op[1], op[2], token, 1700000000, i * op[5])
                if runs and runs[-1][0] == got:
                    runs[-1][1] += 1
                else:
                    runs.append([got, 1])
            out.append(runs)
        elif name == "accept":
            n = 0
            try:
                for _ in range(op[1]):
                    j.append(accepted)
                    n += 1
            except JournalFull:
                pass
            out.append(n)
        elif name == "records":
            got = []
            for _, buf, p, n, seq, _ in j._walk():
                if seq > j.acked:
                    r = record.decode(bytes(buf[p + 1:p + 1 + n]))
                    got.append((r["kind"], r["decision"], r["reason"], r["token"], r["amount"], r["fare_id"],
                                sorted(r["ext"].items())))
            out.append(got)
        elif name == "counters":
            out.append((d.recorded, d.coalesced, d.unrecorded))
        elif name == "room":
            out.append((j.free, j.full, d.reserve))
        elif name == "ack":
            j.ack(j.next_seq - 1)
            while j.prepare():
                pass
            out.append(None)
    return out


def body_constants():
    from firmware import declines

    return declines.RECORDED, declines.COALESCED, declines.UNRECORDED, declines.WINDOW_MS, declines.MAX_KEYS


def body_reboot_remembers_only_accepted(line):
    """A declined record of a code and an accepted one of another, learnt back at boot: is each still new?"""
    from firmware import decision
    from protocol import crypto, record

    d = decision.Decider(b"s" * 16, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    first = d.decide(line)
    declined = record.encode(b"TERM0001", 1, 1700000000, first.kind, 0, 156, record.DECLINED,
                             record.REASON_DENY_LISTED, 0, first.token, ())
    after = decision.Decider(b"s" * 16, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    after.remember_record(declined)
    return first.outcome, after.decide(line).outcome


def consts(rt):
    return dict(zip(("RECORDED", "COALESCED", "UNRECORDED", "WINDOW", "MAX_KEYS"), rt.run(body_constants)))


def test_every_decline_reason_becomes_a_declined_record_without_card_data(rt):
    c = consts(rt)
    declines = [
        (record.KIND_UNKNOWN, record.REASON_UNKNOWN_FORMAT, None),
        (record.KIND_UNKNOWN, record.REASON_TOO_LONG, None),
        (record.KIND_QR_CPM, record.REASON_MALFORMED, None),
        (record.KIND_QR_CPM, record.REASON_DENY_LISTED, TOKEN),
        (record.KIND_TICKET, record.REASON_TICKET_BAD_SIGNATURE, None),
        (record.KIND_TICKET, record.REASON_TICKET_USED_UP, OTHER),
        (record.KIND_EMV_CONTACTLESS, record.REASON_CARD_READ, None),
        (record.KIND_EMV_CONTACTLESS, record.REASON_CARD_DECLINED, TOKEN),
        (record.KIND_UNKNOWN, record.REASON_TERMINAL_ERROR, None),
    ]
    ops = [("decline", k, r, t, 1000 * i) for i, (k, r, t) in enumerate(declines)] + [("records",), ("counters",)]
    got = rt.run(body_declines, 7, ops)
    assert got[:len(declines)] == [c["RECORDED"]] * len(declines)
    expected = [(k, record.DECLINED, r, t or record.NO_TOKEN, 0, 0, []) for k, r, t in declines]
    assert got[-2] == expected
    assert got[-1] == (len(declines), 0, 0)


def test_a_flood_of_identical_declines_is_coalesced_and_still_counted(rt):
    c = consts(rt)
    w = c["WINDOW"]
    garbage = (record.KIND_UNKNOWN, record.REASON_UNKNOWN_FORMAT, None)
    ops = [("flood",) + garbage + (20, w // 20, False)]  # 20 lines inside one window
    ops += [("decline", record.KIND_QR_CPM, record.REASON_DENY_LISTED, TOKEN, 5),  # another key: its own record
            ("decline", record.KIND_QR_CPM, record.REASON_DENY_LISTED, OTHER, 6),  # another token, too
            ("decline",) + garbage + (w + 1,),  # the window is over: a record carrying the 19 coalesced
            ("decline",) + garbage + (w + 2,),
            ("records",), ("counters",)]
    got = rt.run(body_declines, 7, ops)
    assert got[0] == [[c["RECORDED"], 1], [c["COALESCED"], 19]]
    assert got[1:5] == [c["RECORDED"], c["RECORDED"], c["RECORDED"], c["COALESCED"]]
    records = got[5]
    assert [(r[2], r[3]) for r in records] == [(record.REASON_UNKNOWN_FORMAT, record.NO_TOKEN),
                                              (record.REASON_DENY_LISTED, TOKEN), (record.REASON_DENY_LISTED, OTHER),
                                              (record.REASON_UNKNOWN_FORMAT, record.NO_TOKEN)]
    assert records[-1][6] == [(record.EXT_REPEATS, struct.pack("<H", 19))]
    assert all(r[6] == [] for r in records[:-1])
    assert got[6] == (4, 20, 0)  # 24 declines: 4 records, 20 counted in repeats (one still waiting in RAM)


def test_a_key_pushed_out_of_the_slots_counts_its_waiting_repeats_as_unrecorded(rt):
    c = consts(rt)
    n = c["MAX_KEYS"]
    ops = [("decline", record.KIND_QR_CPM, record.REASON_DENY_LISTED, bytes([k]) * 16, 0) for k in range(n)]
    ops += [("decline", record.KIND_QR_CPM, record.REASON_DENY_LISTED, bytes([0]) * 16, 1)] * 3  # 3 waiting
    ops += [("decline", record.KIND_QR_CPM, record.REASON_DENY_LISTED, bytes([n]) * 16, 2), ("counters",)]
    got = rt.run(body_declines, 7, ops)
    assert got[-2] == c["RECORDED"]
    assert got[-1] == (n + 1, 3, 3)


def test_declines_stop_at_the_reserve_and_accepted_taps_keep_their_room(rt):
    c = consts(rt)
    # Distinct tokens (a window apart: no coalescing) until the reserve stops them, then accepted taps.
    ops = [("room",), ("flood", record.KIND_QR_CPM, record.REASON_DENY_LISTED, None, 600, c["WINDOW"], True),
           ("room",), ("counters",), ("accept", 1000), ("room",),
           ("decline", record.KIND_QR_CPM, record.REASON_JOURNAL_FULL, TOKEN, 0),
           ("decline", record.KIND_UNKNOWN, record.REASON_UNKNOWN_FORMAT, None, 0),
           ("counters",), ("ack",), ("decline", record.KIND_UNKNOWN, record.REASON_TOO_LONG, None, 0)]
    got = rt.run(body_declines, 7, ops)
    free0, full0, reserve = got[0]
    assert not full0 and reserve == free0 // 4
    (first, recorded), (then, unrecorded) = got[1]  # every decline recorded until the reserve, none after
    assert (first, then, recorded + unrecorded) == (c["RECORDED"], c["UNRECORDED"], 600)
    got = [got[0]] + [None] * 600 + got[2:]  # indexes as if each decline of the flood were an op
    free1, full1, _ = got[601]
    assert not full1 and reserve - 51 <= free1 < reserve  # stopped within one 51-byte entry of the reserve
    assert got[602] == (recorded, 0, 600 - recorded)
    accepted = got[603]  # 50-byte records, 57-byte entries: every byte the declines left takes accepted taps
    assert accepted * 57 >= free1 - 2 * 57
    assert got[604][1] is True  # the journal is full now ...
    assert got[605] == c["UNRECORDED"]  # ... so "journal full" cannot be journalled: counted
    assert got[606] == c["UNRECORDED"]
    assert got[607] == (recorded, 0, 600 - recorded + 2)
    assert got[609] == c["RECORDED"]  # the host acknowledged: room again


def test_a_declined_record_is_not_remembered_as_paid_after_a_reboot(rt):
    from protocol import cpm

    first, after = rt.run(body_reboot_remembers_only_accepted, cpm.encode("6212345678901232"))
    assert (first, after) == (1, 1)  # ACCEPT both times: the declined record paid nothing
