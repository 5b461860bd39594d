"""NFC taps on the virtual board: the PN532 emulator on the board's nfc port presents a UnionPay HCE
phone; the terminal reads it over EMV, records a deferred-authorisation transaction (ARQC, card data sealed
to the collector's key after the epoch key's two records), uploads it, the collector opens the sealed data,
and the raw flash image, the collector database and the console hold the test PAN and track 2 in no
encoding.  A terminal without the collector's key declines card taps."""

import threading

import pytest

from host_sim.backend import sealing, serial_server
from host_sim.backend.store import Store
from host_sim.emulators import emv_card
from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.tools import provision
from protocol import pn532, record, tlv
from tests.waiting import wait_until


def pan_encodings(pan, track2):
    """The card number as ASCII digits, packed BCD (F-padded, and shifted by one nibble), and track 2."""
    out = [pan.encode(), track2, pan[:12].encode()]
    for digits in (pan, "F" + pan, "0" + pan):
        if len(digits) % 2:
            digits += "F"
        out.append(bytes.fromhex(digits))
    out.append(bytes.fromhex(pan[:12]))
    out.append(bytes.fromhex(pan[1:13]))
    return out


def wait_removed(emu):
    """Wait until the phone has left the field and the terminal has polled the empty field since: the
    terminal reads a target again only after it saw the field empty, so the next presentation is a new tap."""
    wait_until(lambda: emu.card is None, timeout=10, what="the phone to leave the field")
    polls = len(emu.commands)
    wait_until(lambda: pn532.CMD_IN_LIST_PASSIVE_TARGET in emu.commands[polls:], timeout=10,
               what="the terminal to poll the empty field")


@pytest.mark.virtual_only("reads the flash image")
def test_unionpay_hce_phone_end_to_end(board, events, tmp_path):
    store = Store(str(tmp_path / "c.db"))
    mark = board.console_mark()
    provision.provision(board.ports["console"], str(tmp_path / "c.db"))  # the collector refuses strangers
    board.wait_console(b"ready:", timeout=20, since=mark)
    stop = threading.Event()
    uplink = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop), daemon=True)
    uplink.start()
    emu = Pn532Emulator(board.ports["nfc"])
    try:
        emu.present("unionpay-hce", dwell_s=0.5)
        i, ev = events.wait_display(timeout=40)
        assert (ev["text"], ev["detail"]) == ("PAID 2.00", "#000003")  # #1 and #2: the epoch key's records
        # The phone stays in the field until dwell_s after the read: it is not charged again.
        wait_removed(emu)
        assert emu.card is None
        emu.present("unionpay-hce", dwell_s=0.5)  # a second tap of the same phone: a new transaction
        i, ev = events.wait_display(i + 1, timeout=20)
        assert (ev["text"], ev["detail"]) == ("PAID 2.00", "#000004")
        wait_removed(emu)
        emu.present("unionpay-hce", atc=1, dwell_s=0.5)  # the first transaction replayed: not charged again
        i, ev = events.wait_display(i + 1, timeout=20)
        assert (ev["text"], ev["detail"]) == ("ALREADY PAID", "#000003")
        wait_removed(emu)

        def both_stored():
            rows = store.query("SELECT raw FROM records WHERE kind = ? ORDER BY seq", (record.KIND_EMV_CONTACTLESS,))
            return rows if len(rows) >= 2 else None

        rows = wait_until(both_stored, timeout=20, interval=0.2, what="both paid taps stored at the collector")
        emu.present("unionpay-hce", ["sw"])
        i, ev = events.wait_display(i + 1, timeout=20)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "card read failed")
    finally:
        emu.close()
        stop.set()
        uplink.join(timeout=2)
    assert len(rows) == 2
    pan = emv_card.PROFILES["unionpay-hce"]["pan"]
    track2 = emv_card.Card("unionpay-hce").track2()
    for (raw,) in rows:
        rec = record.decode(raw)
        assert rec["kind"] == record.KIND_EMV_CONTACTLESS and rec["decision"] == record.ACCEPTED
        assert rec["amount"] == 200 and rec["currency"] == 156
        assert rec["ext"][record.EXT_AID] == emv_card.UNIONPAY_CREDIT  # the phone's priority 1
        clear = tlv.decode(rec["ext"][record.EXT_EMV_DATA])
        assert tlv.find(clear, 0x9F27) == b"\x80"  # ARQC: authorisation deferred to the host
        assert len(rec["ext"][record.EXT_EMV_SEALED]) > 12 + 16
        for enc in pan_encodings(pan, track2):
            assert enc not in raw
        opened = tlv.decode(sealing.open_sealed(store, rec["terminal"].hex(), rec))  # the development key
        assert tlv.find(opened, 0x5A).hex().rstrip("f") == pan and tlv.find(opened, 0x57) == track2
    keys = store.query("SELECT seq FROM records WHERE kind = ?", (record.KIND_SEAL_KEY,))
    assert keys == [(1,), (2,)]
    store.close()
    with open(str(tmp_path / "c.db"), "rb") as f:
        db = f.read()
    for enc in pan_encodings(pan, track2):
        assert enc not in db, enc
    console = board.console_text()
    assert pan not in console and pan[:12] not in console
    board.stop()
    with open(board.flash, "rb") as f:
        image = f.read()
    for enc in pan_encodings(pan, track2):
        assert enc not in image, enc


def test_real_world_card_answers_and_a_card_removed_mid_read(board, events, tmp_path):
    """Each card gets its own outcome on the display; a card pulled away mid-read declines and the next
    card reads normally."""
    mark = board.console_mark()
    provision.provision(board.ports["console"], str(tmp_path / "c.db"))  # the collector's seal key
    board.wait_console(b"ready:", timeout=20, since=mark)
    emu = Pn532Emulator(board.ports["nfc"])
    i = -1
    shown = []
    try:
        for profile, faults in [("unionpay-card", ["removal"]), ("visa", []), ("cb-visa", []),
                                ("unionpay-card", ["expired"]), ("visa", ["aac"]), ("cb-visa", ["tc"]),
                                ("unionpay-hce", ["cvm"])]:
            emu.present(profile, faults, dwell_s=0.5, remove_after=3)
            i, ev = events.wait_display(i + 1, timeout=40)
            shown.append((ev["text"], ev["detail"] if ev["text"] in ("DECLINED", "SEE DRIVER") else ""))
            wait_removed(emu)
    finally:
        emu.close()
    assert shown == [("DECLINED", "card removed"), ("PAID 2.00", ""), ("PAID 2.00", ""), ("DECLINED", "card expired"),
                     ("DECLINED", "card declined"), ("DECLINED", "card offline only"), ("SEE DRIVER", "PIN needed")]


def test_without_the_collectors_key_card_taps_are_declined(tmp_path):
    from host_sim.tools import vboard
    from tests.vboard.helpers import Events

    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), seal_key=None).start()  # a board shipped keyless
    events = Events(board.ports["events"])
    emu = Pn532Emulator(board.ports["nfc"])
    try:
        board.wait_console(b"ready:", timeout=20)
        emu.present("unionpay-hce", dwell_s=0.5)
        _, ev = events.wait_display(timeout=40)
        assert (ev["text"], ev["detail"]) == ("SEE DRIVER", "no host key")
        assert "seal key: none, card payments declined" in board.console_text()
    finally:
        emu.close()
        events.close()
        board.stop()
