"""Fleet-wide tokens on two virtual terminals served by one collector: a card accepted offline on A and
declined by the acquirer after A's upload is refused on B once B's config session brought the deny
list (the same card has the same token on both, and the host computes it too); when its issuer
re-enables it (`acquirer --allow`) the removal reaches B and the card pays again; a rotated token key
reaches B, whose next record is made under it.  A board without a token key declines payment taps."""

import time

from host_sim.backend import acquirer
from host_sim.backend import tokens as host_tokens
from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import vboard
from protocol import record, tokens
from tests.vboard.helpers import Events, Served, payment_code, provisioned, tap
from tests.waiting import wait_until

BLOCKED_PAN = "6250947000001236"  # a unionpay-hce test account; the acquirer's rules decline its ATC 41
OTHER_PAN = "6228480000000000018"


def delivered(store, terminal, kind):
    rows = store.query("SELECT version FROM config_delivered WHERE terminal = ? AND kind = ?", (terminal, kind))
    return rows[0][0] if rows else 0


def stored(store, terminal, count, board):
    return wait_until(lambda: (lambda rows: rows if len(rows) >= count else None)(
        store.query("SELECT seq, decision, reason, token, raw FROM records WHERE terminal = ? AND kind != ? "
                    "ORDER BY seq", (terminal, record.KIND_SEAL_KEY))), timeout=20, interval=0.2,
        what="%d records of %s" % (count, terminal), context=board.console_text)


def test_a_decline_on_one_terminal_is_refused_on_another_and_a_removal_re_enables_it(tmp_path):
    db = str(tmp_path / "c.db")
    boards = [vboard.VirtualBoard(str(tmp_path / ("%s.img" % n)), uid=uid).start()
              for n, uid in (("a", "5642000001"), ("b", "5642000002"))]
    served, scanners, events, store = [], [], [], None
    try:
        for b in boards:
            b.wait_console(b"ready:", timeout=20)
        a_id, b_id = [provisioned(b, db) for b in boards]
        store = Store(db)
        version, key = store.token_key()
        for b in boards:
            b.wait_console(b"token key: version %d" % version, timeout=5)
            served.append(Served(b, store, {"decline_atcs": [41]}))
            scanners.append(ScannerEmulator(b.ports["scanner"]))
            events.append(Events(b.ports["events"]))
        (sa, sb), (ea, eb) = scanners, events
        _, ev = tap(sa, ea, payment_code(BLOCKED_PAN, 41), 0)
        assert ev["text"] == "PAID 2.00"  # offline on A; the acquirer declines it after the upload
        wait_until(lambda: delivered(store, a_id, 1) == 1, timeout=20, interval=0.2, what="A's deny list",
                   context=boards[0].console_text)
        token = tokens.token(key, BLOCKED_PAN)
        assert stored(store, a_id, 1, boards[0])[0][3] == token  # the host computes the terminals' token
        # B's next session exchange (after its own upload) brings the delta made from A's upload
        seen, ev = tap(sb, eb, payment_code(OTHER_PAN, 7), 0)
        assert ev["text"] == "PAID 2.00"
        wait_until(lambda: delivered(store, b_id, 1) == 1, timeout=20, interval=0.2, what="B's deny list",
                   context=boards[1].console_text)
        boards[1].wait_console(b"deny list: version 1, 1 cards", timeout=10)
        seen, ev = tap(sb, eb, payment_code(BLOCKED_PAN, 42), seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "card blocked")
        # the issuer re-enables the card: the removal reaches B with its next exchange
        assert acquirer.allow(store, [token.hex()], "re-enabled by issuer")["allowed"] == [token.hex()]
        seen, ev = tap(sb, eb, payment_code(OTHER_PAN, 8), seen)
        wait_until(lambda: delivered(store, b_id, 1) == 2, timeout=20, interval=0.2, what="B's removal",
                   context=boards[1].console_text)
        boards[1].wait_console(b"deny list: version 2, 0 cards", timeout=10)
        seen, ev = tap(sb, eb, payment_code(BLOCKED_PAN, 43), seen)
        assert ev["text"] == "PAID 2.00"
        # rotation: B gets key 2 at its next exchange and tokenises under it
        v2 = host_tokens.rotate(store)["version"]
        _, key2 = store.token_key()
        seen, ev = tap(sb, eb, payment_code(OTHER_PAN, 9), seen)
        wait_until(lambda: delivered(store, b_id, 4) == v2, timeout=20, interval=0.2, what="B's new token key",
                   context=boards[1].console_text)
        boards[1].wait_console(b"token key: version %d active" % v2, timeout=10)
        seen, ev = tap(sb, eb, payment_code(BLOCKED_PAN, 44), seen)
        assert ev["text"] == "PAID 2.00"
        rows = stored(store, b_id, 6, boards[1])
        last = record.decode(rows[-1][4])
        assert last["token"] == tokens.token(key2, BLOCKED_PAN) != token
        assert int.from_bytes(last["ext"][record.EXT_TOKEN_KEY], "little") == v2
        assert [(r[1], r[2]) for r in rows] == [(1, 0), (2, record.REASON_DENY_LISTED), (1, 0), (1, 0), (1, 0), (1, 0)]
        for _, _, _, _, raw in rows:
            assert BLOCKED_PAN.encode() not in raw and OTHER_PAN.encode() not in raw
    finally:
        for s in served:
            s.close()
        if store is not None:
            store.close()
        for x in scanners + events:
            x.close()
        for b in boards:
            b.stop()


def test_a_board_without_a_token_key_declines_payment_taps(tmp_path):
    b = vboard.VirtualBoard(str(tmp_path / "flash.img"), token_key=None).start()
    ev_log = Events(b.ports["events"])
    scanner = ScannerEmulator(b.ports["scanner"])
    try:
        b.wait_console(b"token key: none, payment taps decline", timeout=20)
        b.wait_console(b"ready:", timeout=20)
        time.sleep(0.2)
        _, ev = tap(scanner, ev_log, payment_code(OTHER_PAN, 1), 0)
        assert (ev["text"], ev["detail"]) == ("SEE DRIVER", record.REASON_TEXT[record.REASON_NO_TOKEN_KEY])
    finally:
        scanner.close()
        ev_log.close()
        b.stop()
