"""The journal on the virtual board's raw partition: records survive a power cut, and the flash image
holds no card number in clear (ASCII or BCD), whatever else the taps wrote."""

import os

from host_sim.emulators.scanner import ScannerEmulator
from protocol import cpm

CARD = "6212345678901234567"  # the test card of the taps
CARD2 = "6228480402564890018"
JOURNAL_OFFSET = 1024 * 1024  # hardware/boards/virtual.py: the raw journal partition
WM_SECTORS = 2


def bcd(digits):
    return bytes.fromhex(digits if len(digits) % 2 == 0 else digits + "F")


def card_forms(pan):
    """Every way a card number could sit on flash: ASCII, packed BCD (either nibble alignment), and the
    first 12 digits of each (a truncated copy identifies a card too)."""
    forms = [pan.encode(), pan[:12].encode(), bcd(pan[:16]), bcd(pan[:12]), bcd(pan[1:13]), bcd(pan)]
    return forms


def test_taps_leave_no_card_number_on_flash_and_survive_a_power_cut(board, events):
    scanner = ScannerEmulator(board.ports["scanner"])
    i = 0
    for n, pan in enumerate([CARD, CARD2, CARD, CARD2]):
        scanner.present(cpm.encode(pan, atc=n + 1, cryptogram=os.urandom(8)))
        i, ev = events.wait_display(i)
        assert ev["text"] == "PAID 2.00", ev
        i += 1
    board.power_cut()
    image = open(board.flash, "rb").read()
    ring = image[JOURNAL_OFFSET + WM_SECTORS * 4096 :]
    assert ring[0] == 0x4A and ring[16] != 0xFF  # the records are in the raw journal partition
    for pan in (CARD, CARD2):
        for form in card_forms(pan):
            assert form not in image, (pan, form.hex())
    board.power_on()
    board.wait_console(b"ready:", timeout=20, since=len(board.console_text()))
    assert "journal next #5" in board.console_text().rsplit("ready:", 1)[1]
