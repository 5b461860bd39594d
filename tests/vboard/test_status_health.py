"""STATUS health bits of the peripherals on the virtual board, end to end into the collector's
terminal_status: with the QR scanner and PN532 emulators attached both the scanner (0x08) and the NFC
(0x10) bit are set; a PN532 that stops answering clears the NFC bit and sets it again once it is back;
without a PN532 the NFC bit stays clear while the scanner's is set.  The rules: protocol/SPEC.md
"STATUS fields"; the logic on MicroPython: tests/firmware/test_health.py."""

import contextlib

from host_sim.backend.store import Store
from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import vboard
from protocol import link
from tests.vboard.helpers import Served, provisioned
from tests.waiting import wait_until

SCANNER = link.HEALTH_SCANNER
NFC = link.HEALTH_NFC


def status_where(store, terminal, board, test):
    """The newest STATUS once one passes `test` (heartbeats come every 5 s)."""
    return wait_until(lambda: [s for s in [store.latest_status(terminal)] if s and test(s["health"])],
                      timeout=30, interval=0.2, what="a STATUS whose health passes the test",
                      context=board.console_text)[0]


@contextlib.contextmanager
def provisioned_and_served(tmp_path, attach):
    """A started board with `attach`ed peripherals, provisioned, its uplink served: (board, store, terminal)."""
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), attach=attach).start()
    served = None
    try:
        board.wait_console(b"ready:", timeout=20)
        db = str(tmp_path / "c.db")
        terminal = provisioned(board, db)
        store = Store(db)
        served = Served(board, store, None)
        yield board, store, terminal
    finally:
        if served is not None:
            served.close()
        board.stop()


def test_scanner_and_nfc_bits_follow_the_modules(tmp_path):
    scanner = ScannerEmulator()
    nfc = Pn532Emulator()
    try:
        with provisioned_and_served(tmp_path, {"scanner": scanner.port, "nfc": nfc.port}) as (board, store, terminal):
            status_where(store, terminal, board, lambda h: h & (SCANNER | NFC) == SCANNER | NFC)
            mark = board.console_mark()
            nfc.silent = True  # the reader hangs: polls go unanswered
            status = status_where(store, terminal, board, lambda h: not h & NFC)
            assert status["health"] & SCANNER
            board.wait_console(b"nfc: PN532 stopped answering", timeout=1, since=mark)
            nfc.silent = False  # back: the terminal starts it again
            status_where(store, terminal, board, lambda h: h & (SCANNER | NFC) == SCANNER | NFC)
            board.wait_console(b"nfc: PN532 ready", timeout=1, since=mark)
    finally:
        scanner.close()
        nfc.close()


def test_without_a_pn532_the_nfc_bit_is_clear(tmp_path):
    scanner = ScannerEmulator()
    try:
        with provisioned_and_served(tmp_path, {"scanner": scanner.port}) as (board, store, terminal):
            board.wait_console(b"nfc: PN532 not answering", timeout=20)  # its first start failed
            status = status_where(store, terminal, board, lambda h: h & SCANNER)
            assert not status["health"] & NFC
    finally:
        scanner.close()
