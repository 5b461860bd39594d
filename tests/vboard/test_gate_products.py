"""The scenic gate and the school bus on the virtual board, configured as the county does it: a profile
bundle (and for the school a roster bundle) signed by the config authority and served by the collector to
the terminal's group.

Scenic gate: a single-entry ticket is refused after a power cut and after 100 other tickets; an unlimited
ticket shown again at once is refused as passback; a party of 4 is admitted 4 times with 4 relay pulses and
a 5th time refused with none.  School bus: a morning of boardings and alightings, an unknown pass refused
with its reason, and the guardian notices the collector stored for the host to send.  Gates of one
group share used tickets through the host: one used up at another gate is refused here.
"""

import json
import struct
import time

import pytest

from host_sim.backend import report
from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle, tickets
from protocol import fleet, profile, record, roster, tokens
from tests.vboard.helpers import Served, mpremote, provisioned, tap
from tests.waiting import wait_until

ISSUER = 9


def configured(board, tmp_path, group, prof, roster_body=None):
    """The board provisioned into `group` with the issuer's ticket key, its profile (and roster) active;
    returns (issuer key, store, served collector, terminal id)."""
    issuer_key = tickets.generate_key()
    ring = tmp_path / "tickets"
    ring.write_text(tickets.keyring_line(issuer_key, ISSUER, 1) + "\n")
    mpremote(board.ports["console"], "fs", "cp", str(ring), ":/flash/keys/tickets")
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    key, key_id = bundle.load_signer(str(keys / "authority.pem"))
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    (shelf / "profile-1.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_PROFILE, 1,
                                                      bundle.profile_body(json.dumps(prof))))
    if roster_body is not None:
        (shelf / "roster-1.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_ROSTER, 1, roster_body))
    db = str(tmp_path / "c.db")
    mark = board.console_mark()
    terminal = provisioned(board, db, config_keys=str(keys / "authority.pem.pub"), group=group)
    store = Store(db)
    served = Served(board, store, None, bundles=str(shelf))
    board.wait_console(b"fleet profile: version 1 active", timeout=30, since=mark)
    if roster_body is not None:
        board.wait_console(b"fleet roster: version 1 active", timeout=30, since=mark)
    return issuer_key, store, served, terminal


def relays(events, start, end):
    return [ev for ev in events.items[start:end] if ev.get("out") == "relay"]


@pytest.mark.virtual_only("a power cut by kill")
def test_scenic_gate(board, events, tmp_path):
    prof = {"profile": "scenic", "group": "lake-east", "scenic": {"passback_s": 600}}
    issuer_key, store, served, _ = configured(board, tmp_path, "lake-east", prof)
    now = int(time.time())

    def ticket(tid, **kw):
        return tickets.issue(issuer_key, ISSUER, 1, tid, valid_from=now - 60, valid_to=now + 3600, **kw)

    single = ticket(b"SINGLE01")
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, single, len(events.items))
        assert (ev["text"], ev["detail"].split(" #")[0]) == ("WELCOME", "entry 1")
        start = seen
        seen, ev = tap(scanner, events, single, seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ticket used up")
        assert relays(events, start, seen) == []  # none for "already used"
        served.close()

        board.power_cut()
        mark = board.console_mark()
        booted = len(events.items)
        board.power_on()
        board.wait_console(b"ready:", timeout=20, since=mark)
        wait_until(lambda: [e for e in events.items[booted:] if e.get("text") == "READY"], timeout=10,
                   what="READY after the power cut", context=board.console_text)
        seen, ev = tap(scanner, events, single, len(events.items))
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ticket used up")  # after the power cut

        for i in range(100):
            seen, ev = tap(scanner, events, ticket(b"OTHER%03d" % i), seen)
            assert ev["text"] == "WELCOME", (i, ev)
        seen, ev = tap(scanner, events, single, seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ticket used up")  # after 100 other tickets

        day_pass = ticket(b"DAYPASS1", entries=0)
        seen, ev = tap(scanner, events, day_pass, seen)
        assert ev["text"] == "WELCOME"
        start = seen
        seen, ev = tap(scanner, events, day_pass, seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "passback: wait")
        assert relays(events, start, seen) == []

        party = ticket(b"PARTY004", party=4)
        start = seen
        for person in range(4):
            seen, ev = tap(scanner, events, party, seen)
            assert ev["text"] == "WELCOME", (person, ev)
        assert len(relays(events, start, seen)) == 4  # one pulse per admission
        start = seen
        seen, ev = tap(scanner, events, party, seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ticket used up")
        assert relays(events, start, seen) == []
    finally:
        scanner.close()
        served.close()
        store.close()


def test_school_morning(board, events, tmp_path):
    prof = {"profile": "school", "group": "school-3", "school": {"product": 50, "rescan_s": 8}}
    today = profile.local_day(None, int(time.time()))
    body = roster.body("school-3", ISSUER, [(b"PUPIL001", 0x7F, today - 1, today + 1),
                                            (b"PUPIL002", 0x7F, today - 1, today + 1)])
    issuer_key, store, served, terminal = configured(board, tmp_path, "school-3", prof, body)
    now = int(time.time())

    def student_pass(tid, holder):
        return tickets.issue(issuer_key, ISSUER, 1, tid, product=50, valid_from=now - 60, valid_to=now + 86400 * 200,
                             entries=0, holder=holder)

    one, two = student_pass(b"PUPIL001", b"G-0001"), student_pass(b"PUPIL002", b"G-0002")
    stranger = student_pass(b"STRANGER", b"G-0099")
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen = len(events.items)
        shown = []
        boarded = time.monotonic()
        for text in (one, two, stranger, one):
            seen, ev = tap(scanner, events, text, seen)
            shown.append((ev["text"], ev["detail"].split(" #")[0] if ev["text"] == "DECLINED" else ""))
        time.sleep(max(0.0, boarded + 9 - time.monotonic()))  # past rescan_s: the next scan is the alighting
        for text in (one, two):
            seen, ev = tap(scanner, events, text, seen)
            shown.append((ev["text"], ""))
        assert shown == [("BOARDED", ""), ("BOARDED", ""), ("DECLINED", "not on roster"),
                         ("DECLINED", "already scanned"), ("ALIGHTED", ""), ("ALIGHTED", "")]

        def school_records():
            rows = store.query("SELECT seq, decision, amount, raw FROM records WHERE kind = ? AND decision = ? "
                               "ORDER BY seq", (record.KIND_SCHOOL_PASS, record.ACCEPTED))
            return rows if len(rows) == 4 else None

        rows = wait_until(school_records, timeout=30, interval=0.3, what="four school records uploaded",
                          context=board.console_text)
        directions = [record.decode(bytes(r[3]))["ext"][record.EXT_SCHOOL][0] for r in rows]
        assert directions == [record.SCHOOL_BOARD] * 2 + [record.SCHOOL_ALIGHT] * 2
        assert all(r[2] == 0 for r in rows)  # no money taken
        notices = report.guardian_rows(store)
        assert [(n["pass"], bytes.fromhex(n["holder_hex"]), n["direction"]) for n in notices] == [
            (b"PUPIL001".hex(), b"G-0001", "board"), (b"PUPIL002".hex(), b"G-0002", "board")]
        declined = store.query("SELECT reason FROM records WHERE kind = ? AND decision = ?",
                               (record.KIND_SCHOOL_PASS, record.DECLINED))
        assert sorted(r[0] for r in declined) == [record.REASON_NOT_ON_ROSTER, record.REASON_RESCANNED]

        # the school sends a roster listing a pupil twice: refused by the terminal, the roster before stays
        dup = bytes([8]) + b"school-3" + struct.pack(">HH", ISSUER, 2) + 2 * (b"PUPIL001" + struct.pack(
            ">BHH", 0x7F, today - 1, today + 1))
        key, key_id = bundle.load_signer(str(tmp_path / "keys" / "authority.pem"))
        mark = board.console_mark()
        (tmp_path / "bundles" / "roster-2.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_ROSTER, 2, dup))
        seen, ev = tap(scanner, events, student_pass(b"STRANGE2", b""), seen)  # its record's upload brings the offer
        board.wait_console(b"config refused: pass 505550494c303031 is on the roster twice", timeout=30, since=mark)
        wait_until(lambda: store.config_refused(terminal, fleet.KIND_ROSTER, 2), timeout=10,
                   what="the refusal kept by the collector")
        time.sleep(max(0.0, boarded + 19 - time.monotonic()))
        seen, ev = tap(scanner, events, one, seen)
        assert ev["text"] == "BOARDED"  # roster 1 still active
    finally:
        scanner.close()
        served.close()
        store.close()


def test_a_ticket_used_up_at_another_gate_of_the_group_is_refused(board, events, tmp_path):
    prof = {"profile": "scenic", "group": "lake-east", "scenic": {"passback_s": 600}}
    issuer_key, store, served, _ = configured(board, tmp_path, "lake-east", prof)
    now = int(time.time())
    used = tickets.issue(issuer_key, ISSUER, 1, b"USEDATB1", valid_from=now - 60, valid_to=now + 3600)
    fresh = tickets.issue(issuer_key, ISSUER, 1, b"FRESH001", valid_from=now - 60, valid_to=now + 3600, entries=2)
    # gate B of the group admitted USEDATB1 (its only admission) and uploaded the record
    other = bytes.fromhex("5642000002000000")
    raw = record.encode(other, 1, now - 30, record.KIND_TICKET, 0, 156, record.ACCEPTED, 0, 2,
                        tokens.ticket_token(ISSUER, b"USEDATB1"),
                        [(record.EXT_ADMISSION, struct.pack(">HHBBH", 1, 1, 1, 1, 1))])
    rec = record.decode(raw)
    rec["raw"] = raw
    mark = board.console_mark()
    store.store([rec])
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, fresh, len(events.items))  # an upload, and with it the deny delta
        assert ev["text"] == "WELCOME"
        board.wait_console(b"deny list: version 1, 1 cards", timeout=30, since=mark)
        seen, ev = tap(scanner, events, used, seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "used at other gate")
        assert [t for t, _, _, _ in store.denied()] == [tokens.ticket_token(ISSUER, b"USEDATB1")]
    finally:
        scanner.close()
        served.close()
        store.close()
