"""The firmware's PN532 driver and EMV read (compiled .mpy, inside MicroPython) against the PN532
emulator over a real pty: every test profile reads, every emulated fault becomes a clean error row
(the MicroPython program only catches Pn532Error and EmvError, so anything else fails the run)."""

import pytest

from host_sim.bench import emv as bench_emv
from host_sim.emulators import emv_card


@pytest.mark.parametrize("profile", sorted(emv_card.PROFILES))
def test_full_read(profile):
    rows, runtime = bench_emv.reads(profile, n=2)
    assert runtime.startswith("micropython")
    for row in rows:
        assert row["ok"], row
        assert row["cid"] == "80" and row["pan_last4"] == emv_card.PROFILES[profile]["pan"][-4:]
        assert bytes.fromhex(row["aid"]) in [aid for aid, _ in emv_card.PROFILES[profile]["aids"]]
        # PPSE, SELECT, GPO, 2 records; M/Chip adds GENERATE AC; a PSE card: PPSE refused, PSE, 3 directory
        # reads, then the rest
        assert row["apdus"] == {"mastercard": 6, "unionpay-pse": 9}.get(profile, 5)


def test_no_card_in_the_field():
    rows, _ = bench_emv.reads(None, n=1)
    assert rows == [{"ok": False, "error": "no target", "apdus": 0, "bytes": 0}]


def test_card_removed_mid_read():
    rows, _ = bench_emv.reads("unionpay-hce", ["removal"], n=1, remove_after=3)
    assert rows[0]["ok"] is False
    assert rows[0]["error"] == "TargetGone: target did not answer" and rows[0]["apdus"] == 4


def test_slow_card_still_reads():
    rows, _ = bench_emv.reads("visa", ["slow"], n=1, slow_s=0.2)
    assert rows[0]["ok"] and rows[0]["apdus"] == 5  # 0.2 s per answer stays inside the driver timeout


@pytest.mark.parametrize("fault,error", [
    ("sw", "EmvError: READ RECORD: status 6A83"),
    ("gpo_sw", "EmvError: the card refused the transaction"),
    ("no_app", "EmvError: no supported application on the card"),
])
def test_faulty_cards(fault, error):
    rows, _ = bench_emv.reads("unionpay-card", [fault], n=1)
    assert rows[0]["ok"] is False and rows[0]["error"] == error


def test_truncated_tlv():
    rows, _ = bench_emv.reads("mastercard", ["truncated"], n=1)
    assert rows[0]["error"].startswith("EmvError: record: bad TLV")
