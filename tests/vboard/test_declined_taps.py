"""Declined taps reach the operator: garbage, an over-long line, a malformed code and a deny-listed card
are journalled as DECLINED records (kind, reason, token when known, amount 0, no card data), uploaded and
stored at the collector, where they are never authorised; a flood of identical garbage lines becomes one
record carrying its repeat count."""

import struct
import time

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from protocol import record
from tests.vboard.helpers import Served, payment_code, provisioned, tap
from tests.waiting import wait_until

BLOCKED_PAN = "6212345678901234569"


def test_declined_taps_are_uploaded_with_their_reasons_and_no_card_data(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    provisioned(board, db)
    store = Store(db)
    served = Served(board, store, {"decline_atcs": [51]})
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, payment_code(BLOCKED_PAN, 51), 0)
        assert ev["text"] == "PAID 2.00"  # accepted offline; the acquirer declines it after upload
        board.wait_console(b"deny list: version 1, 1 cards", timeout=30)
        shown = []
        for payload in ["not a payment code"] * 5 + ["X" * 3000, "hQVDUFYwM" + "A" * 40,
                                                     payment_code(BLOCKED_PAN, 52)]:
            seen, ev = tap(scanner, events, payload, seen)
            shown.append((ev["text"], ev["detail"]))
        assert shown == [("DECLINED", "unknown code")] * 5 + [
            ("DECLINED", "too long"), ("DECLINED", "bad payment code"), ("DECLINED", "card blocked")]
        wanted = 4  # the five garbage lines within seconds: one record now, the other four wait to be counted
        rows = wait_until(lambda: [r for r in [store.query(
            "SELECT kind, reason, amount, token, raw FROM records WHERE decision = ? ORDER BY seq", (record.DECLINED,))]
            if len(r) == wanted], timeout=20, interval=0.2, what="the declined records at the collector",
            context=board.console_text)[0]
        mark = board.console_mark()
        seen, ev = tap(scanner, events, payment_code(BLOCKED_PAN, 53), seen)  # the same card again, at once
        assert ev["detail"] == "card blocked"
        board.wait_console(b"counted with a recent identical decline", timeout=5, since=mark)
        blocked = store.query("SELECT token FROM records WHERE decision = 1")[0][0]
    finally:
        served.close()
        scanner.close()
    assert [(k, r, a) for k, r, a, _, _ in rows] == [
        (record.KIND_UNKNOWN, record.REASON_UNKNOWN_FORMAT, 0), (record.KIND_UNKNOWN, record.REASON_TOO_LONG, 0),
        (record.KIND_QR_CPM, record.REASON_MALFORMED, 0), (record.KIND_QR_CPM, record.REASON_DENY_LISTED, 0)]
    assert [t for _, _, _, t, _ in rows] == [record.NO_TOKEN] * 3 + [blocked]
    for *_, raw in rows:
        rec = record.decode(raw)
        assert rec["ext"] == {} and len(raw) == record.HEADER_SIZE  # no card data, sealed or clear
    # Never authorised: only the accepted tap has a decision.
    assert store.query("SELECT COUNT(*) FROM authorisations") == [(1,)]
    # No card number anywhere in the collector's database, in ASCII or BCD.
    with open(db, "rb") as f:
        data = f.read()
    wal = tmp_path / "c.db-wal"
    data += wal.read_bytes() if wal.exists() else b""
    store.close()
    assert BLOCKED_PAN.encode() not in data and bytes.fromhex(BLOCKED_PAN + "F") not in data


@pytest.mark.slow
def test_garbage_after_the_window_carries_the_count_of_the_coalesced_lines(board, events, tmp_path):
    """A record of the same reason after the window says how many identical declines it stands for."""
    db = str(tmp_path / "c.db")
    provisioned(board, db)
    store = Store(db)
    served = Served(board, store, None)
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen = 0
        for _ in range(3):
            seen, ev = tap(scanner, events, "garbage", seen)
            assert ev["text"] == "DECLINED"
        time.sleep(31)  # the 30-second window (firmware/declines.py WINDOW_MS) ends
        seen, ev = tap(scanner, events, "garbage", seen)
        rows = wait_until(lambda: [r for r in [store.query("SELECT raw FROM records WHERE kind != ? ORDER BY seq",
                                                                     (record.KIND_SEAL_KEY,))] if len(r) == 2],
                          timeout=20, interval=0.2, what="two declined records", context=board.console_text)[0]
    finally:
        served.close()
        scanner.close()
        store.close()
    first, second = (record.decode(r[0]) for r in rows)
    assert record.EXT_REPEATS not in first["ext"]
    assert struct.unpack("<H", second["ext"][record.EXT_REPEATS]) == (2,)
