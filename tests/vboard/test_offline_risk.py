"""Offline risk on the virtual board, the operator's findings of issue 14 one by one: an old payment code
shown again after 32 other taps, after a power cut, or with a lower ATC; the same card re-tapped a second
later; 50 new ATCs of one card in a day.  The state behind it is on the board's flash (firmware/tapstate.py),
the limits come from the terminal's profile, delivered by the collector as a signed bundle."""

import json

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle
from protocol import fleet, luhn
from tests.vboard.helpers import Served, payment_code, provisioned, tap
from tests.waiting import wait_until

PAN = "6228480000000000018"  # a test issuer's card: the acquirer approves its codes, no deny-list delta
PAID_ROWS = "SELECT seq FROM records WHERE decision = 1 AND amount > 0"


def pan(i):
    head = "621700%012d" % i
    return next(head + str(d) for d in range(10) if luhn.valid(head + str(d)))


@pytest.mark.virtual_only("a power cut by kill")
def test_an_old_code_is_refused_after_32_other_taps_after_a_power_cut_and_with_a_lower_atc(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, payment_code(PAN, 5), 0)
        assert ev["text"] == "PAID 2.00"
        first = ev["detail"]
        for i in range(33):  # more than the 32 recent taps the terminal kept in RAM before
            seen, ev = tap(scanner, events, payment_code(pan(i), 1), seen)
            assert ev["text"] == "PAID 2.00", (i, ev)
        seen, ev = tap(scanner, events, payment_code(PAN, 5), seen)
        assert (ev["text"], ev["detail"]) == ("ALREADY PAID", first)

        mark = board.console_mark()
        board.power_cut()
        board.power_on()
        board.wait_console(b"ready:", timeout=20, since=mark)
        seen = len(events.items)
        seen, ev = tap(scanner, events, payment_code(PAN, 5), seen)
        assert (ev["text"], ev["detail"]) == ("ALREADY PAID", first)
        seen, ev = tap(scanner, events, payment_code(PAN, 4), seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "replayed code")
        relays = [e for e in events.items if e["out"] == "relay"]
        paid = [e for e in events.items if e["out"] == "display" and e.get("text") == "PAID 2.00"]
        assert len(relays) == len(paid) == 34  # the gate opened for each paid tap, never for a repeat or a replay
        seen, ev = tap(scanner, events, payment_code(PAN, 6), seen)
        assert ev["text"] == "PAID 2.00"
    finally:
        scanner.close()


def with_profile(board, tmp_path, risk):
    """Provision `board` into route-7 and have the collector deliver route-7's profile with `risk`:
    (store, served) once the terminal says the profile is active."""
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    key, key_id = bundle.load_signer(str(keys / "authority.pem"))
    body = json.dumps({"profile": "bus", "group": "route-7", "risk": risk}).encode()
    (shelf / "route-7-1.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_PROFILE, 1, body))
    db = str(tmp_path / "c.db")
    provisioned(board, db, config_keys=str(keys / "authority.pem.pub"), group="route-7")
    store = Store(db)
    mark = board.console_mark()
    served = Served(board, store, None, bundles=str(shelf))
    board.wait_console(b"fleet profile: version 1 active", timeout=30, since=mark)
    return store, served


@pytest.mark.virtual_only("a power cut by kill")
def test_the_same_card_re_tapped_a_second_later_is_already_paid_not_charged(board, events, tmp_path):
    store, served = with_profile(board, tmp_path, {})  # the documented defaults: a 60 s window
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        seen, ev = tap(scanner, events, payment_code(PAN, 21), len(events.items))
        assert ev["text"] == "PAID 2.00"
        first = ev["detail"]
        seen, ev = tap(scanner, events, payment_code(PAN, 22), seen)  # a new ATC, a second later
        assert (ev["text"], ev["detail"]) == ("ALREADY PAID", first)
        mark = board.console_mark()
        board.power_cut()
        board.power_on()
        board.wait_console(b"ready:", timeout=20, since=mark)
        seen, ev = tap(scanner, events, payment_code(PAN, 23), len(events.items))
        assert (ev["text"], ev["detail"]) == ("ALREADY PAID", first)
        seen, ev = tap(scanner, events, payment_code(pan(1), 1), seen)  # another card still pays
        assert ev["text"] == "PAID 2.00"
        paid = {int(first.lstrip("#")), int(ev["detail"].lstrip("#"))}
        rows = wait_until(lambda: [r for r in [{s for (s,) in store.query(PAID_ROWS)}] if r >= paid], timeout=20,
                          interval=0.2, what="the paid taps at the collector", context=board.console_text)[0]
    finally:
        scanner.close()
        served.close()
    assert rows == paid  # the re-taps were never charged: no record of theirs reached the collector


def test_50_new_atcs_of_one_card_in_a_day_stop_at_the_first_ride_cap(board, events, tmp_path):
    _, served = with_profile(board, tmp_path, {"dup_window_s": 0})  # every tap a new ride; default caps
    scanner = ScannerEmulator(board.ports["scanner"])
    shown = []
    try:
        seen = len(events.items)
        for atc in range(100, 150):
            seen, ev = tap(scanner, events, payment_code(PAN, atc), seen)
            shown.append((ev["text"], ev["detail"]))
    finally:
        scanner.close()
        served.close()
    assert [s[0] for s in shown] == ["PAID 2.00"] * 5 + ["DECLINED"] * 45  # a card first seen today: 5 rides
    assert {s[1] for s in shown[5:]} == {"new card ride limit"}
