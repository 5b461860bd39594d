"""Fleet bundles end to end on the virtual board: `provision --config-keys` gives the terminal the config
authority's public key, the collector serves a fare bundle from `--bundles DIR`, and the very next tap
pays the new fare (no reboot); a bundle signed by another key is refused and the fare stays; after a
power cut the terminal boots with the fare it had activated, inside the heap budget."""

import re

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle
from protocol import fleet, record
from tests.vboard.helpers import READY_USED_BUDGET, Served, payment_code, provisioned, tap
from tests.waiting import wait_until

PAN = "6228480000000000018"


def fares(directory, key_file, version, fen):
    key, key_id = bundle.load_signer(key_file)
    data = bundle.sign(key, key_id, fleet.KIND_FARES, version, bundle.fares_body({1: fen}))
    (directory / ("fares-%d.zfb" % version)).write_bytes(data)


@pytest.mark.virtual_only("a power cut by kill")
def test_a_fleet_fare_bundle_sets_the_fare_of_the_next_tap(board, events, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    bundle.keygen(str(keys / "rogue.pem"), 1)  # same key id, not the terminal's key
    shelf = tmp_path / "bundles"
    shelf.mkdir()
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db, config_keys=str(keys / "authority.pem.pub"))
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    served = None
    try:
        seen, ev = tap(scanner, events, payment_code(PAN, 1), 0)
        assert ev["text"] == "PAID 2.00"  # the built-in flat fare
        fares(shelf, str(keys / "authority.pem"), 1, 350)
        served = Served(board, store, None, bundles=str(shelf))

        def delivered():
            return store.query("SELECT version FROM config_delivered WHERE terminal = ? AND kind = ?",
                               (terminal, fleet.KIND_FARES))

        wait_until(lambda: delivered() == [(1,)], timeout=20, interval=0.2, what="fares version 1 delivered",
                   context=board.console_text)
        board.wait_console(b"fleet fares: version 1 active", timeout=5)
        seen, ev = tap(scanner, events, payment_code(PAN, 2), seen)
        assert ev["text"] == "PAID 3.50"  # the next tap, without a reboot

        mark = board.console_mark()
        fares(shelf, str(keys / "rogue.pem"), 2, 1)  # a forged cheap fare
        seen, ev = tap(scanner, events, payment_code(PAN, 3), seen)  # the upload after it brings the offer
        assert ev["text"] == "PAID 3.50"
        board.wait_console(b"config refused: bad signature on fleet bundle (config key 1)", timeout=20, since=mark)
        seen, ev = tap(scanner, events, payment_code(PAN, 4), seen)
        assert ev["text"] == "PAID 3.50"
        assert delivered() == [(1,)]
        rows = wait_until(lambda: [r for r in [store.query("SELECT amount FROM records WHERE kind != ? ORDER BY seq",
                                                               (record.KIND_SEAL_KEY,))] if len(r) == 4],
                          timeout=20, interval=0.2, what="four records stored", context=board.console_text)[0]
        assert [r[0] for r in rows] == [200, 350, 350, 350]
    finally:
        if served is not None:
            served.close()

    board.power_cut()  # and boot again on the same flash: the active bundle is read from /flash/config
    mark = board.console_mark()
    booted = len(events.items)
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=mark)
    wait_until(lambda: [ev for ev in events.items[booted:] if ev.get("out") == "display" and ev.get("text") == "READY"],
               timeout=10, what="the READY display after the power cut", context=board.console_text)
    try:
        seen, ev = tap(scanner, events, payment_code(PAN, 5), seen)
        assert ev["text"] == "PAID 3.50"
    finally:
        scanner.close()
    line = [ln for ln in board.console_text().splitlines() if ln.startswith("ready:")][-1]
    used = int(re.search(r"heap (\d+) used", line).group(1))
    assert used <= READY_USED_BUDGET, line
