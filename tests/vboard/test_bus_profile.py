"""The bus profile on the virtual board: `provision --group` puts the terminal on route 7, the collector
delivers route 7's profile bundle, the GPS emulator on the board's "gps" UART puts the bus at stop B and
the next tap pays the stage fare from B to the end of the line; when the GPS sends garbage the bus falls
back to the default fare and says so (display and console); the driver display sets the stop and a
passenger's destination; a bad profile is refused with its reason and
the active one stays; after a power cut the terminal boots with its profile."""

import json

import pytest
import serial

from host_sim.backend.store import Store
from host_sim.emulators.gps import GpsEmulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle
from protocol import fleet
from tests.vboard.helpers import Served, payment_code, provisioned, tap
from tests.waiting import wait_until

PAN = "6228480000000000018"
STOPS = [{"name": "A", "lat_e6": 30270000, "lon_e6": 120150000, "stage": 0},
         {"name": "B", "lat_e6": 30280000, "lon_e6": 120160000, "stage": 1},
         {"name": "C", "lat_e6": 30290000, "lon_e6": 120170000, "stage": 2},
         {"name": "D", "lat_e6": 30300000, "lon_e6": 120180000, "stage": 3}]
ROUTE_7 = {"profile": "bus", "group": "route-7",
           "bus": {"fare": "stage", "default_fen": 500, "fares_fen": [100, 200, 300, 400], "stops": STOPS},
           "risk": {"dup_window_s": 0, "new_max_rides": 20}}  # one card rides often here, seconds apart


def shelve(directory, key_file, version, obj, name):
    key, key_id = bundle.load_signer(key_file)
    body = json.dumps(obj).encode()  # as signed, unchecked: the terminal checks it itself
    (directory / ("%s-%d.zfb" % (name, version))).write_bytes(bundle.sign(key, key_id, fleet.KIND_PROFILE, version,
                                                                          body))


@pytest.mark.virtual_only("a power cut by kill")
def test_a_route_profile_gps_stops_and_the_default_fare(board, events, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    db = str(tmp_path / "c.db")
    provisioned(board, db, config_keys=str(keys / "authority.pem.pub"), group="route-7")
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    gps = GpsEmulator([(STOPS[1]["lat_e6"], STOPS[1]["lon_e6"] + 300)], board.ports["gps"], dwell=0).start()
    served = None
    try:
        shelve(shelf, str(keys / "authority.pem"), 1, ROUTE_7, "route-7")
        shelve(shelf, str(keys / "authority.pem"), 2, dict(ROUTE_7, group="route-9"), "route-9")  # not ours
        mark = board.console_mark()
        served = Served(board, store, None, bundles=str(shelf))
        board.wait_console(b"fleet profile: version 1 active", timeout=30, since=mark)
        board.wait_console(b"bus: at stop 1 B", timeout=15, since=mark)
        seen, ev = tap(scanner, events, payment_code(PAN, 1), len(events.items))
        assert ev["text"] == "PAID 3.00"  # stage 1 to the end of the line (stage 3): two stages

        bad = dict(ROUTE_7, bus=dict(ROUTE_7["bus"], fares_fen=[100, 200, 300, 99999]))
        mark = board.console_mark()
        shelve(shelf, str(keys / "authority.pem"), 3, bad, "route-7")
        seen, ev = tap(scanner, events, payment_code(PAN, 2), seen)  # the upload after it brings the offer
        board.wait_console(b"config refused: profile refused: bus: fares_fen[3] 99999 is outside 0..50000",
                           timeout=20, since=mark)
        assert ev["text"] == "PAID 3.00"

        mark = board.console_mark()
        gps.mode = "garbage"
        board.wait_console(b"bus: no stop from the GPS, charging the default fare of 500 fen", timeout=15, since=mark)
        wait_until(lambda: [e for e in events.items[seen:] if e.get("text") == "DEFAULT FARE"], timeout=5,
                   what="the DEFAULT FARE display")
        seen, ev = tap(scanner, events, payment_code(PAN, 3), len(events.items))
        assert ev["text"] == "PAID 5.00"

        panel = serial.serial_for_url(board.ports["driver"], baudrate=9600, timeout=5)  # the driver display
        try:
            panel.write(b"STOP 2\r\n")
            assert panel.readline() == b"OK STOP 2 C\r\n"
            panel.write(b"DEST 3\r\n")
            assert panel.readline() == b"OK DEST 3 D\r\n"
            seen, ev = tap(scanner, events, payment_code(PAN, 5), len(events.items))
            assert ev["text"] == "PAID 2.00"  # C to D: one stage
            seen, ev = tap(scanner, events, payment_code(PAN, 6), seen)
            assert ev["text"] == "PAID 3.00"  # the next passenger: C to the farther end, A
            panel.write(b"GPS\r\n")
            assert panel.readline() == b"OK GPS\r\n"
        finally:
            panel.close()
        mark = board.console_mark()
        seen = len(events.items)
        gps.mode = "ok"  # the receiver has its fix again: stop B, and the passenger display is ready again
        board.wait_console(b"bus: at stop 1 B", timeout=15, since=mark)
        wait_until(lambda: [e for e in events.items[seen:] if e.get("text") == "READY"], timeout=5,
                   what="the READY display once the GPS is back")
        refused = store.query("SELECT kind, version FROM config_refused")
        assert refused == [(fleet.KIND_PROFILE, 3)]
        delivered = store.query("SELECT version FROM config_delivered WHERE kind = ?", (fleet.KIND_PROFILE,))
        assert delivered == [(1,)]  # route 9's v2 was never offered to this terminal
    finally:
        if served is not None:
            served.close()

    board.power_cut()
    gps.mode = "ok"
    mark = board.console_mark()
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=mark)
    try:
        board.wait_console(b"fleet profile: bus for route-7, version 1", timeout=1, since=mark)
        board.wait_console(b"bus: at stop 1 B", timeout=15, since=mark)
        seen, ev = tap(scanner, events, payment_code(PAN, 7), len(events.items))
        assert ev["text"] == "PAID 3.00"
    finally:
        scanner.close()
        gps.close()


FLAT_WITH_TRANSFER_AND_CAP = {
    "profile": "bus", "group": "route-3",
    "bus": {"fare": "flat", "default_fen": 200, "transfer": {"window_min": 60, "discount_fen": 150},
            "daily_cap_rides": 2},
    "risk": {"dup_window_s": 0},  # rides seconds apart in this test are new rides, not repeats
}


@pytest.mark.virtual_only("a power cut by kill")
def test_a_bus_ride_with_a_transfer_discount_and_the_daily_cap(board, events, tmp_path):
    from protocol import record

    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db, config_keys=str(keys / "authority.pem.pub"), group="route-3")
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    served = None
    try:
        shelve(shelf, str(keys / "authority.pem"), 1, FLAT_WITH_TRANSFER_AND_CAP, "route-3")
        mark = board.console_mark()
        served = Served(board, store, None, bundles=str(shelf))
        board.wait_console(b"fleet profile: version 1 active", timeout=30, since=mark)
        seen = len(events.items)
        paid = []
        for atc in (1, 2, 3):  # boarding, a transfer inside the hour, a third ride: over the cap of two
            seen, ev = tap(scanner, events, payment_code(PAN, atc), seen)
            paid.append(ev["text"])
        assert paid == ["PAID 2.00", "PAID 0.50", "PAID 0.00"]
    finally:
        if served is not None:
            served.close()

    board.power_cut()  # the credential's rides today are on flash, not in RAM
    mark = board.console_mark()
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=mark)
    served = Served(board, store, None, bundles=str(shelf))
    try:
        seen, ev = tap(scanner, events, payment_code(PAN, 4), len(events.items))
        assert ev["text"] == "PAID 0.00"

        def stored():
            rows = store.query("SELECT amount, raw FROM records WHERE terminal = ? AND kind = ? ORDER BY seq",
                               (terminal, record.KIND_QR_CPM))
            return rows if len(rows) == 4 else None

        rows = wait_until(stored, timeout=20, interval=0.2, what="four rides stored", context=board.console_text)
        assert [r[0] for r in rows] == [200, 50, 0, 0]
        rules = [record.decode(bytes(r[1]))["ext"][record.EXT_BUS_RULE] for r in rows]
        assert [(r[0], int.from_bytes(r[1:5], "little")) for r in rules] == [(0, 200), (2, 200), (3, 200), (3, 200)]
    finally:
        served.close()
        scanner.close()
