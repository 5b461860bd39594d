"""One uplink session does more than upload: the collector's acquirer declines a card and the deny-list
update reaches the terminal in the same session (the card is refused at its next tap, which is uploaded
as a declined record, others still pay);
the terminal's clock follows the collector's within bounds; its heartbeats land in terminal_status."""

import time

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from protocol import record
from tests.vboard.helpers import Served, payment_code, provisioned, tap
from tests.waiting import wait_until

BLOCKED_PAN = "6212345678901234569"
OTHER_PAN = "6228480000000000018"
HOUR = 3600


def test_a_declined_card_is_refused_at_its_next_tap_once_the_deny_list_arrived(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db)
    store = Store(db)
    served = Served(board, store, {"decline_atcs": [41]}, wallclock=lambda: time.time() + HOUR)
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, payment_code(BLOCKED_PAN, 41), 0)
        assert ev["text"] == "PAID 2.00"  # accepted offline: the acquirer has not seen it yet
        seen, ev = tap(scanner, events, payment_code(OTHER_PAN, 7), seen)
        assert ev["text"] == "PAID 2.00"
        wait_until(lambda: store.query("SELECT version FROM config_delivered WHERE terminal = ? AND kind = 1",
                                       (terminal,)) == [(1,)],
                   timeout=20, interval=0.2, what="deny list version 1 delivered", context=board.console_text)
        board.wait_console(b"deny list: version 1, 1 cards", timeout=10)
        seen, ev = tap(scanner, events, payment_code(BLOCKED_PAN, 42), seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "card blocked")
        seen, ev = tap(scanner, events, payment_code(OTHER_PAN, 8), seen)
        assert ev["text"] == "PAID 2.00"
        taps = "SELECT seq FROM records WHERE kind != %d" % record.KIND_SEAL_KEY  # not the epoch key's records
        rows = wait_until(lambda: store.query("SELECT atc, time FROM records WHERE decision = 1 ORDER BY seq") if
                          len(store.query(taps)) == 4 else None, timeout=20, interval=0.2,
                          what="four records stored", context=board.console_text)
        # The declined card's first ride and both rides of the other card; the refused tap is a declined record
        # under the blocked card's token (firmware/declines.py), which the acquirer never authorises.
        assert [int.from_bytes(r[0], "big") for r in rows] == [41, 7, 8]
        (refused,) = store.query("SELECT r.token, r.reason, r.amount, a.seq FROM records r LEFT JOIN authorisations a"
                                 " ON a.terminal = r.terminal AND a.seq = r.seq WHERE r.decision = 2")
        blocked = store.query("SELECT token FROM records WHERE atc = ?", ((41).to_bytes(2, "big"),))[0][0]
        assert refused == (blocked, record.REASON_DENY_LISTED, 0, None)
        # The collector's clock runs an hour ahead: the session set the terminal's clock to it.
        assert abs(rows[2][1] - (time.time() + HOUR)) < 30
        board.wait_console(b"uplink: clock set to", timeout=1)
        # Heartbeats: the newest STATUS shows the new deny list and an empty queue.
        status = wait_until(lambda: [s for s in [store.latest_status(terminal)]
                                     if s and s["deny_version"] == 1 and s["depth"] == 0], timeout=20, interval=0.2,
                            what="a STATUS with deny list 1 and an empty queue", context=board.console_text)[0]
        assert status["health"] & 0x07 == 0x07  # journal ok, clock synced, config current
        assert status["journal_free"] > 0 and status["journal_dropped"] == 0
        assert status["signal"] == -128  # a serial line has no signal
    finally:
        served.close()
        scanner.close()


def test_the_terminal_refuses_a_clock_before_2024_and_reports_its_queue(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db)
    store = Store(db)
    served = Served(board, store, None, wallclock=lambda: 1600000000.0)  # September 2020
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        board.wait_console(b"uplink: time 16000000", timeout=20)
        seen, ev = tap(scanner, events, payment_code(OTHER_PAN, 9), 0)
        assert ev["text"] == "PAID 2.00"
        rows = wait_until(lambda: store.query("SELECT time FROM records"), timeout=20, interval=0.2,
                          what="the tap stored", context=board.console_text)
        assert abs(rows[0][0] - time.time()) < 30  # the terminal kept its own clock
        status = wait_until(lambda: store.latest_status(terminal), timeout=20, interval=0.2, what="a STATUS",
                            context=board.console_text)
        assert status["health"] & 0x02 == 0  # clock not synced
    finally:
        served.close()
        scanner.close()
