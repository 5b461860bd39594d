"""The journal on the virtual board's raw partition: records survive a power cut, and the flash image
holds no card number in clear (ASCII or BCD), whatever else the taps wrote."""

import os

import pytest

from host_sim.emulators.scanner import ScannerEmulator
from protocol import cpm
from tests.vboard.helpers import JOURNAL_OFFSET, mpremote

CARD = "6212345678901234569"  # the test card of the taps
CARD2 = "6228480402564890018"
JOURNAL_SIZE = 512 * 1024
WM_SECTORS = 2


def bcd(digits):
    return bytes.fromhex(digits if len(digits) % 2 == 0 else digits + "F")


def card_forms(pan):
    """Every way a card number could sit on flash: ASCII, packed BCD (either nibble alignment), and the
    first 12 digits of each (a truncated copy identifies a card too)."""
    forms = [pan.encode(), pan[:12].encode(), bcd(pan[:16]), bcd(pan[:12]), bcd(pan[1:13]), bcd(pan)]
    return forms


@pytest.mark.virtual_only("reads the flash image and cuts the power by kill")
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
    # all four taps are back, behind the two records of the epoch key they are sealed under
    board.wait_console(b"journal next #7, 6 to upload, 0 damaged", timeout=30)


def fill_journal(image_path, salt, count):
    """Append `count` records to the journal partition of a powered-off board's image (CPython)."""
    from firmware.journal import Journal, JournalFull
    from host_sim.device.norflash import NorFlash
    from protocol import crypto, record

    with open(image_path, "r+b") as f:
        f.seek(JOURNAL_OFFSET)
        region = bytearray(f.read(JOURNAL_SIZE))
        j = Journal(NorFlash(len(region) // 4096, region), crypto.derive(salt, b"journal mac")).open()

        def build(seq):
            token = seq.to_bytes(16, "little")
            return record.encode(
                b"ZF000001",
                seq,
                1700000000,
                record.KIND_QR_CPM,
                200,
                156,
                record.ACCEPTED,
                record.REASON_NONE,
                1,
                token,
            )

        try:
            for _ in range(count):
                j.append(build)
                j.prepare()
        except JournalFull:
            pass
        f.seek(JOURNAL_OFFSET)
        f.write(region)
        return j.next_seq


@pytest.mark.virtual_only("fills the journal in the flash image")
def test_a_full_journal_refuses_paid_taps_and_says_so(board, events):
    salt = bytes.fromhex(mpremote(board.ports["console"], "exec",  # wrapped on flash (firmware/keystore.py)
                                  "import board\nfrom firmware import identity, keystore\n"
                                  "keystore.use(board.secret())\nprint(identity.salt('/flash').hex())"
                                  ).strip().splitlines()[-1])
    board.power_cut()
    next_seq = fill_journal(board.flash, salt, 100000)
    board.power_on()
    board.wait_console(b"journal next #%d" % next_seq, timeout=30)
    ready = board.console_text().rsplit("ready:", 1)[1].split("\n")[0]
    assert "(FULL)" in ready, ready
    scanner = ScannerEmulator(board.ports["scanner"])
    scanner.present(cpm.encode(CARD, atc=9, cryptogram=os.urandom(8)))
    i, ev = events.wait_display(len(events.items))
    assert (ev["text"], ev["detail"], ev["detail_zh"]) == ("SEE DRIVER", "terminal full", "终端存储已满")
    assert "tap declined: terminal full" in board.console_text()
