"""Per-record verdicts and the ERRORs the collector sends (protocol/SPEC.md "REFUSED", "ERROR"): a bad
record is kept aside and named in REFUSED while the good ones are stored and the frame acknowledged;
a conflicting (terminal, seq) is never acknowledged as stored; the host's AUTH carries seq_high; ERROR
3, 6, 7 and 9 each go out in their situation; CONFIG is never offered to a terminal without CAP_CONFIG."""

import sqlite3
import struct

from host_sim.backend import acquirer, backoffice, host_session
from host_sim.backend.store import REFUSED_FRAME
from protocol import cobs, frame, link, peer, record, refusal
from protocol.crc import crc32
from tests.host_sim.helpers import BAD, TERMINAL, ListeningTerminal, Terminal, registered, tap_record

TOKEN = bytes.fromhex("c0ffee00112233445566778899aabbcc")
OTHER = b"XX\x00\x00\x00\x00\x00\x01"


def rec(seq, atc=b"\x00\x01", terminal=TERMINAL):
    return record.encode(terminal, seq, 1_800_000_000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                         TOKEN, [(record.EXT_ATC, atc)])


def refused_of(t):
    return [(e["seq"], e["reason"]) for m in t.got if m["type"] == "REFUSED" for e in m["refused"]]


def with_caps(t, caps):
    """Restart the terminal's handshake announcing `caps`."""
    t.peer.caps = caps
    t.peer.start(t.now)
    return t.pump()


def test_a_poison_record_is_refused_and_the_rest_arrive(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    t.peer.send(link.RECORDS, link.records([rec(1), rec(2, terminal=OTHER), rec(3)]), 3)
    t.peer.send(link.RECORDS, link.records([rec(4)[:30], rec(5)]), 5)
    bad_version = b"\x07" + rec(6)[1:]
    t.peer.send(link.RECORDS, link.records([bad_version]), 6)
    t.pump()
    assert t.peer.sender.delivered_tag == 6 and t.peer.sender.in_flight() == 0  # nothing stuck
    assert [r[0] for r in store.query("SELECT seq FROM records ORDER BY seq")] == [1, 3, 5]
    assert sorted(refused_of(t)) == [(2, refusal.WRONG_TERMINAL), (4, refusal.MALFORMED),
                                     (6, refusal.UNSUPPORTED)]
    kept = {row[1]: row for row in store.refused(TERMINAL.hex())}
    assert kept[2][3] == rec(2, terminal=OTHER) and kept[4][3] == rec(4)[:30] and kept[6][3] == bad_version
    assert all(row[5] for row in kept.values())  # the terminal acknowledged the REFUSED: notified
    t.upload([rec(7), rec(8)])  # later records all arrive
    assert t.peer.sender.delivered_tag == 8 and s.stored == 5 and s.records_refused == 3


def test_a_conflicting_record_is_never_acknowledged_as_stored(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    t.upload([rec(1), rec(2)])
    t.upload([rec(2), rec(3)])  # a resend of #2: a duplicate receipt, no verdict
    assert refused_of(t) == [] and s.duplicate_receipts == 1
    t.upload([rec(2, atc=b"\x00\x99"), rec(4)])  # another tap under #2
    assert refused_of(t) == [(2, refusal.CONFLICT)]
    assert [(seq, raw) for _, seq, raw in store.conflicts()] == [(2, rec(2, atc=b"\x00\x99"))]
    assert store.query("SELECT raw FROM records WHERE seq = 2") == [(rec(2),)]  # the stored one stays
    assert s.duplicate_receipts == 1 and s.stored == 4
    assert t.peer.sender.delivered_tag == 4


def test_the_hosts_auth_carries_the_highest_sequence_number_it_holds(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    assert t.peer.host_seq_high == 0
    t.upload([rec(1), rec(100)])
    t.upload([rec(100, atc=b"\x00\x02"), rec(101, terminal=OTHER)])  # a conflict; another terminal's number
    t2 = Terminal(host_session.Session(store)).pump()
    assert t2.peer.host_seq_high == 100


def test_a_record_too_short_for_its_number_gets_error_3_and_the_frame_is_acknowledged(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    stub = rec(9)[:14]
    fseq = t.peer.send(link.RECORDS, link.records([rec(1), stub]), 9)
    t.pump()
    assert t.peer.sender.delivered_tag == 9 and t.errors == [link.E_MALFORMED]
    [err] = [m for m in t.got if m["type"] == "ERROR"]
    assert err["text"].startswith("record 1 of frame %d" % fseq)
    assert [(row[1], row[2], row[3]) for row in store.refused()] == [(None, refusal.MALFORMED, stub)]
    assert [r[0] for r in store.query("SELECT seq FROM records")] == [1]


def test_verdicts_wait_for_a_terminal_that_quarantines(db):
    store = registered(db=db)
    t = with_caps(Terminal(host_session.Session(store)), peer.CAPS)  # no CAP_REFUSED
    t.upload([rec(1), rec(2, terminal=OTHER)])
    assert refused_of(t) == [] and t.peer.sender.delivered_tag == 2  # kept and logged, nothing lost
    assert store.unnotified(TERMINAL.hex()) == [(2, refusal.WRONG_TERMINAL)]
    t2 = Terminal(host_session.Session(store)).pump()  # the next session, from a terminal that takes them
    assert refused_of(t2) == [(2, refusal.WRONG_TERMINAL)]
    assert store.unnotified(TERMINAL.hex()) == []
    assert refused_of(Terminal(host_session.Session(store)).pump()) == []  # told once


def test_a_database_failure_is_error_9_and_the_frame_is_not_acknowledged(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    real = store.store_verdicts

    def broken(recs):
        raise sqlite3.OperationalError("disk I/O error (injected)")

    store.store_verdicts = broken
    t.peer.send(link.RECORDS, link.records([rec(1)]), 1)
    t.pump(rounds=3)
    assert link.E_STORAGE in t.errors and t.peer.sender.delivered_tag == 0
    store.store_verdicts = real  # the disk is back: the retransmission is stored
    t.now += 10_000
    t.pump()
    assert t.peer.sender.delivered_tag == 1 and store.query("SELECT seq FROM records") == [(1,)]


def test_an_authentic_frame_that_does_not_decode_gets_error_3_is_acknowledged_and_kept(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    fseq = t.peer.send(link.STATUS, b"\x01\x02\x03", 0)  # a STATUS of 3 bytes
    t.pump()
    assert t.errors == [link.E_MALFORMED] and t.peer.sender.in_flight() == 0
    [err] = [m for m in t.got if m["type"] == "ERROR"]
    assert "frame %d" % fseq in err["text"]
    [row] = store.refused()
    assert row[1] is None and row[2] == REFUSED_FRAME and row[3].endswith(b"\x01\x02\x03")


def test_a_secured_frame_without_a_session_gets_error_6_at_most_once_a_second(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    clock = [5000]
    restarted = host_session.Session(store, clock=lambda: clock[0])  # the collector restarted: no session
    t.peer.send(link.RECORDS, link.records([rec(1)]), 1)
    frames = [t.peer.poll(t.now) for _ in range(2)]
    t.peer.send(link.RECORDS, link.records([rec(2)]), 2)
    frames.append(t.peer.poll(t.now))
    replies = frame.FrameReader().feed(b"".join(restarted.receive(link.wire(f)) for f in frames if f))
    assert [link.decode(r)["code"] for r in replies] == [link.E_NOT_AUTHENTICATED]  # in the clear, once
    t.peer.feed(replies[0], t.now)
    assert t.peer.renew and not t.peer.up()  # the terminal starts a new handshake at once
    clock[0] += 999
    assert restarted.receive(link.wire(frames[0])) == b""
    clock[0] += 1
    again = frame.FrameReader().feed(restarted.receive(link.wire(frames[0])))
    assert [link.decode(r)["code"] for r in again] == [link.E_NOT_AUTHENTICATED]


def test_an_overlong_frame_gets_error_7_rate_limited(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    junk = b"\x00" + b"\x11" * 700 + b"\x00"
    replies = t.reader.feed(s.receive(junk) + s.receive(junk))
    opened = [t.peer.session.open(r) for r in replies]
    assert [link.decode(p)["code"] for p in opened] == [link.E_TOO_LARGE]


def test_the_host_announces_a_frame_size_whose_payloads_it_takes(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    announced = t.peer.peer_hello["max_frame"]

    def largest(max_frame):  # SPEC "Frame size", independent of protocol.link
        p = 0
        while 1 + (p + 1) + 4 + (p + 5) // 254 + 2 <= max_frame:
            p += 1
        return p

    p = largest(announced)
    assert p == frame.MAX_PAYLOAD
    payload = link.encode(link.CONFIG_CHUNK, link.config_chunk(1, 1, 0, b"\x5a" * (p - 16)))
    assert len(payload) == p and len(link.wire(payload)) <= announced
    assert s.frames.feed(link.wire(payload)) == [payload]  # the collector's own reader takes it
    longer = payload + b"\x5a"  # one more byte than announced: not taken, and answered with ERROR 7
    assert s.frames.feed(b"\x00" + cobs.encode(longer + struct.pack("<I", crc32(longer))) + b"\x00") == []
    assert s.frames.overlong == 1


def test_no_config_offer_to_a_terminal_without_cap_config(db):
    store = registered(db=db)

    def run(caps):
        s = host_session.Session(store, backoffice=backoffice.Backoffice(store, acquirer.Acquirer(
            {"decline_atcs": [41]})))
        t = with_caps(ListeningTerminal(s), caps)
        t.upload([tap_record(len(store.query("SELECT seq FROM records")) + 1, BAD, 41)])
        s.backoffice.authorise_pending()
        t.pump()
        return t.take("CONFIG_OFFER")

    assert run((peer.CAPS | link.CAP_REFUSED) & ~link.CAP_CONFIG) == []
    assert len(run((peer.CAPS | link.CAP_REFUSED))) == 1


def test_a_refused_record_received_again_is_kept_once_and_named_again(db):
    store = registered(db=db)
    store.refuse(TERMINAL.hex(), 7, refusal.MALFORMED, b"raw7")
    store.notified(TERMINAL.hex(), [7])
    store.refuse(TERMINAL.hex(), 7, refusal.MALFORMED, b"raw7")
    assert len(store.refused()) == 1 and store.unnotified(TERMINAL.hex()) == [(7, refusal.MALFORMED)]


def test_the_report_lists_refused_records_and_sequence_jumps(tmp_path):
    import csv
    import json
    import subprocess
    import sys

    from host_sim.tools import build

    store = registered(tmp_path)
    t = Terminal(host_session.Session(store)).pump()
    jump = record.encode(TERMINAL, 50, 1_800_000_000, record.KIND_SEQ_JUMP, 0, 0, 0, 0, 0, record.NO_TOKEN,
                         [(record.EXT_SEQ_JUMP, struct.pack("<II", 3, 49))])
    t.upload([rec(1), rec(2, terminal=OTHER), jump])
    store.close()
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["refused"], summary["seq_jumps"]) == (1, 1)
    with open(summary["refused_csv"]) as f:
        [row] = list(csv.DictReader(f))
    assert (row["seq"], row["reason"], row["notified"]) == ("2", "wrong terminal", "1")
    with open(summary["seq_jumps_csv"]) as f:
        [row] = list(csv.DictReader(f))
    assert (row["seq"], row["first"], row["last"]) == ("50", "3", "49")


def test_frame_for_announces_exactly_the_largest_payload():
    for p in (50, 249, 250, 251, 480):
        assert link.max_payload(host_session.frame_for(p)) == p
        assert len(link.wire(b"\x01" * p)) <= host_session.frame_for(p)
