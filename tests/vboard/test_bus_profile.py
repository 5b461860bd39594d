"""The bus profile on the virtual board: `provision --group` puts the terminal on route 7, the collector
delivers route 7's profile bundle, the GPS emulator on the board's "gps" UART puts the bus at stop B and
the next tap pays the stage fare from B to the end of the line; when the GPS sends garbage the bus falls
back to the default fare and says so (display and console); a bad profile is refused with its reason and
the active one stays; after a power cut the terminal boots with its profile."""

import json

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
           "bus": {"fare": "stage", "default_fen": 500, "fares_fen": [100, 200, 300, 400], "stops": STOPS}}


def shelve(directory, key_file, version, obj, name):
    key, key_id = bundle.load_signer(key_file)
    body = json.dumps(obj).encode()  # as signed, unchecked: the terminal checks it itself
    (directory / ("%s-%d.zfb" % (name, version))).write_bytes(bundle.sign(key, key_id, fleet.KIND_PROFILE, version,
                                                                          body))


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
        board.wait_console(b"bus: at stop 1 B", timeout=15, since=mark)
        seen, ev = tap(scanner, events, payment_code(PAN, 4), len(events.items))
        assert ev["text"] == "PAID 3.00"
    finally:
        scanner.close()
        gps.close()
