"""firmware/decision.py with signed tickets, on both runtimes: admitted within the window by a trusted
key, each refusal with its own reason (forged, unknown issuer, revoked key, not yet valid, expired, used
up, clock not set, malformed), entry counting and its rebuild from journal records after a reboot.
"""

import hashlib
import struct

import pytest

from host_sim.tools import tickets
from protocol import record
from tests.firmware.helpers import roomy

SALT = bytes(range(100, 116))
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def keys():
    return {1: tickets.generate_key(), 2: tickets.generate_key()}


def body_tickets(salt, keylines, lines, now, replay):
    """Decide `lines` in turn (accepted ones remembered, as the terminal does after its journal
    append); `replay`: journal records a rebooted terminal feeds to remember_record first."""
    from firmware import decision
    from protocol import ticket

    ring = ticket.Keyring()
    for k in keylines:
        ring.load_line(k)
    d = decision.Decider(salt, keyring=ring)
    for rec in replay:
        d.remember_record(rec)
    out = []
    for i, line in enumerate(lines):
        r = d.decide(line, now)
        if r.outcome == decision.ACCEPT:
            d.remember(r.token, r.atc, 100 + i, r.kind)
        out.append((r.outcome, r.reason, r.kind, r.amount, r.fare_id, r.token, [tuple(e) for e in r.extensions],
                    r.reason_text()))
    return out


def issue(key, kid=1, tid=b"TICKET01", **kw):
    kw.setdefault("valid_from", NOW - 3600)
    kw.setdefault("valid_to", NOW + 3600)
    return tickets.issue(key, 5, kid, tid, **kw)


def token(tid):
    # tickets: a keyless token, the same on every terminal (protocol/tokens.py ticket_token)
    return hashlib.sha256(b"zf ticket" + (5).to_bytes(2, "big") + tid).digest()[:16]


def test_admits_counts_entries_and_refuses_precisely(runtime, keys):
    lines = [tickets.keyring_line(keys[1], 5, 1), tickets.keyring_line(keys[2], 5, 2), "revoked 5 2"]
    two = issue(keys[1], entries=2, product=9)
    cases = [two, two, two, issue(keys[2], kid=1, tid=b"FORGED01"), issue(keys[2], kid=2, tid=b"REVOKED1"),
             tickets.issue(keys[1], 6, 1, b"OTHERISS", valid_from=NOW - 1, valid_to=NOW + 1),
             issue(keys[1], tid=b"EARLY001", valid_from=NOW + 10), issue(keys[1], tid=b"LATE0001", valid_to=NOW),
             "ZT1.AAAA", issue(keys[1], tid=b"UNLIMITD", entries=0)]
    got = runtime.run(body_tickets, SALT, lines, cases, NOW, [])
    assert [(g[0], g[1]) for g in got] == [
        (1, 0), (1, 0), (2, record.REASON_TICKET_USED_UP), (2, record.REASON_TICKET_BAD_SIGNATURE),
        (2, record.REASON_TICKET_KEY_REVOKED), (2, record.REASON_TICKET_UNKNOWN_KEY),
        (2, record.REASON_TICKET_NOT_YET_VALID), (2, record.REASON_TICKET_EXPIRED),
        (2, record.REASON_TICKET_MALFORMED), (1, 0)]
    first = got[0]
    assert first[2] == record.KIND_TICKET and first[3] == 0 and first[4] == 2 and first[5] == token(b"TICKET01")
    assert first[6] == [(record.EXT_TICKET, struct.pack(">HB8sHB", 5, 1, b"TICKET01", 9, 1))]
    assert got[1][6][0][1][-1] == 2  # second entry
    assert got[2][7] == "ticket used up" and got[3][7] == "forged ticket"
    many = runtime.run(body_tickets, SALT, lines, [cases[-1]] * 5, NOW, [])
    assert [g[0] for g in many] == [1] * 5


def test_no_clock_and_no_keys(runtime, keys):
    t = issue(keys[1])
    got = runtime.run(body_tickets, SALT, [tickets.keyring_line(keys[1], 5, 1)], [t], 1000, [])
    assert got[0][1] == record.REASON_TICKET_NO_CLOCK and got[0][7] == "clock not set"
    got = runtime.run(body_tickets, SALT, [], [t], NOW, [])
    assert got[0][1] == record.REASON_TICKET_UNKNOWN_KEY


def test_entry_count_rebuilt_from_journal_records(runtime, keys):
    t = issue(keys[1], entries=1)
    rec = record.encode(b"T" * 8, 7, NOW - 5, record.KIND_TICKET, 0, 156, record.ACCEPTED, 0, 2, token(b"TICKET01"),
                        [(record.EXT_TICKET, struct.pack(">HB8sHB", 5, 1, b"TICKET01", 1, 1))])
    got = runtime.run(body_tickets, SALT, [tickets.keyring_line(keys[1], 5, 1)], [t], NOW, [rec])
    assert got[0][1] == record.REASON_TICKET_USED_UP


def test_entry_memory_is_bounded(runtime, keys):
    """RAM holds at most MAX_TICKETS ticket counts; the oldest is forgotten first (documented limit)."""
    from firmware import decision

    n = decision.MAX_TICKETS
    texts = [issue(keys[1], tid=b"B%07d" % i, entries=1) for i in range(n + 1)]
    # 26 KB of ticket texts as arguments: more room than the decision itself needs
    got = roomy(runtime).run(body_tickets, SALT, [tickets.keyring_line(keys[1], 5, 1)], texts + [texts[1], texts[0]],
                             NOW, [])
    assert [g[0] for g in got[: n + 1]] == [1] * (n + 1)
    assert got[n + 1][1] == record.REASON_TICKET_USED_UP  # still remembered
    assert got[n + 2][0] == 1  # the oldest was forgotten: admitted again
