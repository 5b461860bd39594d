"""firmware/gate.py on both runtimes: the scenic gate (entries kept in the durable tap state across a
power cut and 100 other tickets, anti-passback, a party of 4 admitted 4 times) and the school bus
(roster, boarding and alighting alternating per pass, a guardian notice per boarding, every refusal
with its reason), and the replay of their records into the tap state at boot.
"""

import hashlib

import pytest

from host_sim.tools import tickets
from protocol import cpm, record, roster
from tests.firmware.helpers import roomy

NOW = 1_800_000_000  # a Friday, 11:20 in UTC+8
DAY = (NOW + 28800) // 86400
SCENIC = {"profile": "scenic", "group": "lake-east", "utc_offset_s": 28800, "scenic": {"passback_s": 600}}
SCHOOL = {"profile": "school", "group": "school-3", "utc_offset_s": 28800, "school": {"product": 50, "rescan_s": 60}}


@pytest.fixture(scope="module")
def key():
    return tickets.generate_key()


def issue(key, tid, **kw):
    kw.setdefault("valid_from", NOW - 3600)
    kw.setdefault("valid_to", NOW + 86400)
    return tickets.issue(key, 5, 1, tid, **kw)


def body_gate(root, keyline, profile, roster_body, runs, denied=()):
    """Each run is one boot of a terminal on the same flash `root` (a power cut between runs): its
    (line, time) taps decided in turn, an admission's state put after its "journal append" as app.py
    does.  Returns per run the (outcome, reason, kind, extensions) of each tap."""
    import gc

    from firmware import decision
    from firmware.tapstate import TapState
    from protocol import fleet, ticket

    ring = ticket.Keyring()
    ring.load_line(keyline)
    class Deny:  # the deny list, as the host's used-ticket sharing fills it
        def contains(self, token):
            return bytes(token) in denied

    seq = 0
    out = []
    for taps in runs:
        d = decision.Decider(None, keyring=ring, deny=Deny())
        d.state = TapState(root)
        if roster_body is not None:
            d.use(fleet.KIND_ROSTER, fleet.read_roster(roster_body))
        d.active.profile = profile
        got = []
        for line, now in taps:
            r = d.decide(line, now)
            if r.outcome == decision.ACCEPT:
                seq += 1
                d.remember(r.token, r.atc, seq, r.kind)
                d.state.put(r.token, r.state, seq)  # app.py, after the journal append
            got.append((r.outcome, r.reason, r.kind, [tuple(e) for e in r.extensions]))
            gc.collect()  # the 100 tickets' texts fill much of a test heap
        out.append(got)
    return out


def outcomes(run):
    return [(g[0], g[1]) for g in run]


ACCEPT, DECLINE = (1, 0), (2, record.REASON_TICKET_USED_UP)


def test_single_entry_refused_after_a_power_cut_and_after_100_other_tickets(runtime, key, tmp_path):
    single = issue(key, b"SINGLE01")
    others = [(issue(key, b"OTHER%03d" % i), NOW + 10 + i) for i in range(100)]
    runs = [[(single, NOW)], [(single, NOW + 5)], others + [(single, NOW + 200)]]
    got = roomy(runtime).run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCENIC, None, runs)
    assert outcomes(got[0]) == [ACCEPT]
    assert outcomes(got[1]) == [DECLINE]  # after the power cut
    assert outcomes(got[2]) == [ACCEPT] * 100 + [DECLINE]  # after 100 other tickets
    ext = dict(got[0][0][3])
    assert ext[record.EXT_TICKET][-1] == 1 and ext[record.EXT_ADMISSION] == b"\x00\x01\x00\x01\x01\x01\x00\x01"


def test_party_of_4_admitted_4_times_then_used_up(runtime, key, tmp_path):
    party = issue(key, b"PARTY004", party=4)
    runs = [[(party, NOW + i) for i in range(3)], [(party, NOW + 3), (party, NOW + 4)]]
    got = roomy(runtime).run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCENIC, None, runs)
    assert outcomes(got[0] + got[1]) == [ACCEPT] * 4 + [DECLINE]
    people = [dict(g[3])[record.EXT_ADMISSION] for g in got[0] + got[1][:1]]
    assert [p[5] for p in people] == [1, 2, 3, 4] and all(p[4] == 4 and p[6:] == b"\x00\x04" for p in people)


def test_a_ticket_the_host_listed_as_used_up_elsewhere_is_refused(runtime, key, tmp_path):
    used = issue(key, b"USEDATB1")
    token = hashlib.sha256(b"zf ticket" + (5).to_bytes(2, "big") + b"USEDATB1").digest()[:16]
    got = runtime.run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCENIC, None,
                      [[(used, NOW), (issue(key, b"FRESH001"), NOW)]], [token])
    assert outcomes(got[0]) == [(2, record.REASON_USED_ELSEWHERE), ACCEPT]


def test_anti_passback_within_the_window_survives_a_power_cut(runtime, key, tmp_path):
    unlimited = issue(key, b"DAYPASS1", entries=0)
    pair = issue(key, b"DAYPAIR1", entries=0, party=2)
    runs = [[(unlimited, NOW), (unlimited, NOW + 5), (pair, NOW), (pair, NOW + 2), (pair, NOW + 3)],
            [(unlimited, NOW + 599), (unlimited, NOW + 600), (pair, NOW + 700), (pair, NOW + 701)]]
    got = roomy(runtime).run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCENIC, None, runs)
    passback = (2, record.REASON_PASSBACK)
    assert outcomes(got[0]) == [ACCEPT, passback, ACCEPT, ACCEPT, passback]
    assert outcomes(got[1]) == [passback, ACCEPT, ACCEPT, ACCEPT]
    assert record.REASON_TEXT[record.REASON_PASSBACK] == "passback: wait"


def test_school_morning(runtime, key, tmp_path):
    body = roster.body("school-3", 5, [
        (b"PUPIL001", 0x1F, DAY - 30, DAY + 100), (b"PUPIL002", 0x1F, DAY - 30, DAY + 100),
        (b"WEEKEND1", 0x60, DAY - 30, DAY + 100), (b"OLDTERM1", 0x7F, DAY - 200, DAY - 1)])
    one = issue(key, b"PUPIL001", product=50, holder=b"G-0001")
    two = issue(key, b"PUPIL002", product=50)
    unknown = issue(key, b"STRANGER", product=50)
    weekend = issue(key, b"WEEKEND1", product=50)
    old = issue(key, b"OLDTERM1", product=50)
    visitor = issue(key, b"PUPIL001", product=1)
    runs = [[(one, NOW), (two, NOW + 1), (one, NOW + 30), (unknown, NOW + 40), (weekend, NOW + 41),
             (old, NOW + 42), (visitor, NOW + 43)],
            [(one, NOW + 3600), (one, NOW + 3700)]]  # after a power cut: alighting, then boarding again
    got = roomy(runtime).run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCHOOL, body, runs)
    kind = record.KIND_SCHOOL_PASS
    assert [(g[0], g[1], g[2]) for g in got[0]] == [
        (1, 0, kind), (1, 0, kind), (2, record.REASON_RESCANNED, kind), (2, record.REASON_NOT_ON_ROSTER, kind),
        (2, record.REASON_NOT_TODAY, kind), (2, record.REASON_NOT_TODAY, kind),
        (2, record.REASON_NOT_STUDENT_PASS, record.KIND_TICKET)]
    board = dict(got[0][0][3])
    assert board[record.EXT_SCHOOL] == bytes([record.SCHOOL_BOARD, 0, 5]) + b"PUPIL001" + bytes([0, 50])
    assert board[record.EXT_GUARDIAN] == b"G-0001"
    assert [(g[0], dict(g[3])[record.EXT_SCHOOL][0]) for g in got[1]] == [(1, record.SCHOOL_ALIGHT),
                                                                        (1, record.SCHOOL_BOARD)]
    assert record.EXT_GUARDIAN not in dict(got[1][0][3]) and record.EXT_GUARDIAN in dict(got[1][1][3])


def test_school_bus_without_a_roster_refuses_with_its_reason(runtime, key, tmp_path):
    one = issue(key, b"PUPIL001", product=50)
    got = runtime.run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), SCHOOL, None, [[(one, NOW)]])
    assert outcomes(got[0]) == [(2, record.REASON_NO_ROSTER)]


def body_replay(root, recs):
    """Records journalled before a power cut whose state was never put: replayed at boot."""
    from firmware import decision
    from firmware.tapstate import TapState
    from protocol import record

    d = decision.Decider(None)
    d.state = TapState(root)
    out = []
    for data in recs:
        rec = record.decode(data)
        e = d.account(d.state.get(rec["token"]), rec)
        if e is not None:
            d.state.put(rec["token"], e, rec["seq"])
        e = d.state.get(rec["token"])
        out.append(None if e is None else (e.entries, e.last_entry_s, e.flags))
    return out


def test_replayed_records_rebuild_entries_and_who_is_on_board(runtime, tmp_path):
    tid = bytes(range(16))
    pupil = bytes(range(16, 32))

    def rec(seq, kind, ext, decision=record.ACCEPTED, token=tid):
        return record.encode(b"T" * 8, seq, NOW + seq, kind, 0, 156, decision, 0, 2, token, ext)

    admission = (record.EXT_ADMISSION, b"\x00\x03\x00\x02\x02\x01")
    board = (record.EXT_SCHOOL, bytes([1, 0, 5]) + b"PUPIL001" + bytes([0, 50]))
    alight = (record.EXT_SCHOOL, bytes([2, 0, 5]) + b"PUPIL001" + bytes([0, 50]))
    recs = [rec(1, record.KIND_TICKET, [admission]), rec(1, record.KIND_TICKET, [admission]),
            rec(2, record.KIND_TICKET, []), rec(3, record.KIND_TICKET, [], record.DECLINED),
            rec(4, record.KIND_SCHOOL_PASS, [board], token=pupil),
            rec(5, record.KIND_SCHOOL_PASS, [alight], token=pupil)]
    got = runtime.run(body_replay, str(tmp_path), recs)
    assert got == [(3, NOW + 1, 0), (3, NOW + 1, 0), (4, NOW + 2, 0), (4, NOW + 2, 0), (1, NOW + 4, 1),
                   (2, NOW + 5, 0)]


def body_school_money(profile, line):
    """A payment code on the school bus (a terminal with a token key and a host key, so it would charge)."""
    from firmware import decision
    from protocol import crypto

    d = decision.Decider(bytes(range(16)), sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    d.active.profile = profile
    r = d.decide(line, 1_800_000_000)
    return r.outcome, r.reason, r.amount


def test_the_school_bus_takes_no_money_and_needs_its_section(runtime, key, tmp_path):
    code = cpm.encode("6212345678901232", atc=1)
    assert runtime.run(body_school_money, SCHOOL, code) == (2, record.REASON_PASSES_ONLY, 0)
    assert runtime.run(body_school_money, dict(SCHOOL, profile="scenic"), code)[0] == 1  # a gate may sell
    bare = {"profile": "school", "group": "school-3", "utc_offset_s": 28800}
    one = issue(key, b"PUPIL001", product=50)
    got = runtime.run(body_gate, str(tmp_path), tickets.keyring_line(key, 5, 1), bare, None, [[(one, NOW)]])
    assert outcomes(got[0]) == [(2, record.REASON_NO_ROSTER)]


def body_school_in_ram(keyline, profile, roster_body, taps):
    """A terminal whose flash refused the tap state: the school bus keeps who is on board in RAM
    (firmware/gate.py), put after the journal append as app.py does."""
    from firmware import decision, gate
    from protocol import fleet, ticket

    ring = ticket.Keyring()
    ring.load_line(keyline)
    d = decision.Decider(None, keyring=ring)
    d.use(fleet.KIND_ROSTER, fleet.read_roster(roster_body))
    d.active.profile = profile
    out = []
    for seq, (line, now) in enumerate(taps):
        r = d.decide(line, now)
        if r.outcome == decision.ACCEPT:
            gate.commit(d, r.token, r.state, seq + 1)
            out.append(dict(r.extensions)[51][0])
        else:
            out.append(-r.reason)
    return out


def test_school_bus_without_durable_state_alternates_in_ram(runtime, key):
    body = roster.body("school-3", 5, [(b"PUPIL001", 0x7F, DAY - 1, DAY + 1)])
    one = issue(key, b"PUPIL001", product=50)
    got = runtime.run(body_school_in_ram, tickets.keyring_line(key, 5, 1), SCHOOL, body,
                      [(one, NOW), (one, NOW + 10), (one, NOW + 100), (one, NOW + 200)])
    assert got == [record.SCHOOL_BOARD, -record.REASON_RESCANNED, record.SCHOOL_ALIGHT, record.SCHOOL_BOARD]
