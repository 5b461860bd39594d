"""Numeric payment codes on a virtual board: authorised online through the collector over the serial
uplink and over the modem emulator (the display says PROCESSING, then PAID), declined with the issuer's
refusal for a code the test issuer does not know, and declined "network needed" when the link is down."""

import json

import pytest

from host_sim import paycodes
from host_sim.backend.store import Store
from host_sim.emulators.modem import ModemEmulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import provision, vboard
from protocol import paycode, record
from tests.host_sim.helpers import free_port, start_collector
from tests.vboard.helpers import Events, Served, provisioned
from tests.waiting import wait_until

ONLINE = "SELECT request_id, result, code_masked FROM online_auth ORDER BY request_id"


def outcome(scanner, events, code, seen):
    """Present `code`; (next index, the display after PROCESSING, whether PROCESSING was shown)."""
    scanner.present(code)
    i, ev = events.wait_display(seen, timeout=10)
    processing = ev["text"] == "PROCESSING"
    if processing:
        i, ev = events.wait_display(i + 1, timeout=10)
    return i + 1, ev, processing


def session_up(store, terminal, board):
    wait_until(lambda: store.latest_status(terminal), timeout=30, interval=0.2, what="a STATUS: the session is up",
               context=board.console_text)


def test_the_link_down_declines_network_needed(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev, processing = outcome(scanner, events, paycodes.make(paycode.UNIONPAY), 0)
        assert (ev["text"], ev["detail"], processing) == ("SEE DRIVER", "network needed", False)
        _, ev, _ = outcome(scanner, events, "622202123456789012", seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "bad pay code")
    finally:
        scanner.close()
    assert "6222021234567890" not in board.console_text()


def test_a_unionpay_code_is_authorised_online_over_the_serial_uplink(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db)
    store = Store(db)
    served = Served(board, store, None)
    scanner = ScannerEmulator(board.ports["scanner"])
    good = paycodes.make(paycode.UNIONPAY)
    try:
        session_up(store, terminal, board)
        seen, ev, processing = outcome(scanner, events, good, len(events.items))
        assert processing and ev["text"] == "PAID 2.00", ev
        seq = int(ev["detail"].lstrip("#"))
        seen, ev, processing = outcome(scanner, events, paycodes.make(paycode.WECHAT, invalid=True), seen)
        assert processing and (ev["text"], ev["detail"]) == ("DECLINED", "code declined")
        seen, ev, _ = outcome(scanner, events, good, seen)  # the same one-time code again
        assert ev["text"] == "ALREADY PAID"
        rows = wait_until(lambda: [r for r in [store.query("SELECT seq, decision, raw FROM records WHERE kind = ?"
                                                           " ORDER BY seq", (record.KIND_PAYMENT_CODE,))]
                                   if len(r) == 2], timeout=20, interval=0.2, what="both payment-code records stored",
                          context=board.console_text)[0]
        online = store.query(ONLINE)
    finally:
        served.close()
        scanner.close()
    assert [(r[0], r[1]) for r in rows] == [(seq, record.ACCEPTED), (rows[1][0], record.DECLINED)]
    accepted = record.decode(rows[0][2])
    ext = accepted["ext"][record.EXT_PAYCODE]
    assert (ext[0], ext[1], int.from_bytes(ext[2:6], "little")) == (record.PATH_ONLINE, paycode.UNIONPAY, seq)
    assert len(ext) == 24 and good.encode() not in rows[0][2]
    assert [(r[0], r[1]) for r in online] == [(seq, "approved"), (rows[1][0], "declined")]
    assert online[0][2] == paycode.masked(good)
    assert good not in board.console_text()


@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_a_unionpay_code_is_authorised_online_over_the_modem(tmp_path, dialect):
    db = str(tmp_path / "c.db")
    port = free_port()
    emu = ModemEmulator(dialect, connect=("127.0.0.1", port), seed=3).start()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), heap=vboard.DEFAULT_HEAP,
                                attach={"uplink": emu.port}).start()
    server = events = scanner = None
    try:
        board.wait_console(b"ready:", timeout=20)
        cfg = {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port, "apn": "cmnet",
               "online_deadline_ms": 3000}
        uplink = tmp_path / "uplink.json"
        uplink.write_text(json.dumps(cfg))
        mark = board.console_mark()
        terminal = provision.provision(board.ports["console"], db, uplink=str(uplink))
        board.wait_console(b"ready:", timeout=20, since=mark)
        server, probe = start_collector(db, port)
        probe.close()
        events = Events(board.ports["events"])
        scanner = ScannerEmulator(board.ports["scanner"])
        store = Store(db)
        session_up(store, terminal, board)
        _, ev, processing = outcome(scanner, events, paycodes.make(paycode.UNIONPAY), len(events.items))
        assert processing and ev["text"] == "PAID 2.00", (ev, board.console_text()[-2000:])
        wait_until(lambda: store.query(ONLINE), timeout=10, interval=0.2, what="the online authorisation stored")
        assert [r[1] for r in store.query(ONLINE)] == ["approved"]
        store.close()
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for x in (events, scanner):
            if x is not None:
                x.close()
        board.stop()
        emu.close()


def test_a_slow_issuer_declines_no_answer_and_its_late_approval_is_reversed(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db)
    store = Store(db)
    served = Served(board, store, None)
    served.office.link.host.delay_ms = 1800  # beyond the collector's 1500 ms budget of a 2000 ms deadline
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        session_up(store, terminal, board)
        _, ev, processing = outcome(scanner, events, paycodes.make(paycode.UNIONPAY), len(events.items))
        assert processing and (ev["text"], ev["detail"]) == ("SEE DRIVER", "no answer")
        wait_until(lambda: store.query("SELECT result FROM online_auth") == [("reversed",)], timeout=20,
                   interval=0.2, what="the late approval reversed", context=board.console_text)
        declined = wait_until(lambda: store.query("SELECT reason, raw FROM records WHERE kind = ?",
                                                  (record.KIND_PAYMENT_CODE,)), timeout=20, interval=0.2,
                              what="the declined record stored", context=board.console_text)
    finally:
        served.close()
        scanner.close()
    assert declined[0][0] == record.REASON_PAYCODE_NO_ANSWER
    assert record.EXT_PAYCODE in record.decode(declined[0][1])["ext"]
    assert len(served.office.link.host.reversed) == 1
