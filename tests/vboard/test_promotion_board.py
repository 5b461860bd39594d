"""A county promotion end to end on the virtual board: the collector delivers a profile whose programme
discounts every CPM fare (chance 1) by 0.50 with a terminal budget of 1.00 a day; the first two taps pay
1.50 and the display says so in Chinese and English ("立减 0.50"), the third pays the full 2.00 because
the terminal's budget is spent, and it stays spent after a power cut.  The records carry the programme,
the discount and the draw, and the host's audit recomputes each draw and finds nothing to flag.  The same
code shown again is "already paid": blue, two short beeps, no gate."""

import json
import time

import pytest

from host_sim.backend import promotions
from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle
from protocol import fleet, promotion, record
from tests.vboard.helpers import Served, payment_code, provisioned, tap
from tests.waiting import wait_until

PANS = ("6228480000000000018", "6228480000000000026", "6228480000000000034", "6228480000000000042")


def local_date(seconds):
    return time.strftime("%Y-%m-%d", time.gmtime(seconds + 8 * 3600))


@pytest.mark.virtual_only("a power cut by kill")
def test_a_promotion_discounts_fares_until_the_terminal_budget_is_spent(board, events, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    now = time.time()
    programme = {"id": 9, "kinds": ["qr_cpm"], "profiles": ["bus"], "chance_ppm": 1000000, "discount_fen": 50,
                 "terminal_daily_fen": 100, "programme_daily_fen": 10000, "from": local_date(now - 86400),
                 "until": local_date(now + 86400)}
    profile = {"profile": "bus", "group": "route-7", "promotions": [programme]}
    key, key_id = bundle.load_signer(str(keys / "authority.pem"))
    body = bundle.profile_body(json.dumps(profile))
    (shelf / "profile-1.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_PROFILE, 1, body))
    db = str(tmp_path / "c.db")
    provisioned(board, db, config_keys=str(keys / "authority.pem.pub"), group="route-7")
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    served = Served(board, store, None, bundles=str(shelf))
    try:
        board.wait_console(b"fleet profile: version 1 active", timeout=30)
        seen = len(events.items)
        shown = []
        for pan in PANS[:3]:  # three passengers (one card twice in a minute would be "already paid")
            seen, ev = tap(scanner, events, payment_code(pan, 1), seen)
            shown.append((ev["text"], ev["detail"].split(" #")[0], ev["text_zh"], ev["detail_zh"]))
        assert shown == [("PAID 1.50", "-0.50", "已付款 1.50元", "立减 0.50"),
                         ("PAID 1.50", "-0.50", "已付款 1.50元", "立减 0.50"),
                         ("PAID 2.00", ev["detail"], "已付款 2.00元", "")]  # detail: the record number alone

        mark = seen
        seen, ev = tap(scanner, events, payment_code(PANS[2], 1), seen)  # the same code again: not charged again
        assert (ev["text"], ev["text_zh"]) == ("ALREADY PAID", "已付过 勿重复")
        outputs = [e for e in events.items[mark:seen] if e["out"] in ("buzzer", "relay")]
        lit = [e["color"] for e in events.items[mark:seen] if e["out"] == "led" and e["on"]]
        assert outputs == [dict(outputs[0], ms=60, hz=2700, times=2)] and lit == ["blue"]  # two short beeps, no gate

        def taps():
            return store.query("SELECT seq, amount, raw FROM records WHERE kind = ? ORDER BY seq",
                               (record.KIND_QR_CPM,))

        rows = wait_until(lambda: [r for r in [taps()] if len(r) == 3], timeout=20, interval=0.2,
                          what="three taps stored", context=board.console_text)[0]
        assert [r[1] for r in rows] == [150, 150, 200]
        got = [promotion.of_record(record.decode(bytes(r[2]))) for r in rows]
        assert [g[:2] if g else None for g in got] == [(9, 50), (9, 50), None]
        audit = promotions.audit(store, {9: promotion.programmes([programme])[0]}, "bus")
        assert [(r["seq"], r["verdict"]) for r in audit] == [(rows[0][0], "ok"), (rows[1][0], "ok")]
    finally:
        served.close()

    board.power_cut()  # the terminal's budget is on flash: still spent after the reboot
    mark = board.console_mark()
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=mark)
    try:
        seen, ev = tap(scanner, events, payment_code(PANS[3], 1), len(events.items))
        assert (ev["text"], ev["detail_zh"]) == ("PAID 2.00", "")
    finally:
        scanner.close()
