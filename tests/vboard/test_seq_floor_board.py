"""The issue's attack on the virtual board: the newest journal sector and both watermark sectors are
damaged, so the terminal restarts its sequence below what the collector holds.  The taps it takes
offline reuse numbers: the collector refuses them as conflicts (kept aside, never acknowledged as
stored), the terminal quarantines them; the host's AUTH lifts the sequence above its seq_high, and every
later tap is stored.  No tap is acknowledged and lost."""

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from protocol import record, refusal
from tests.vboard.helpers import JOURNAL_OFFSET, Served, payment_code, provisioned, tap
from tests.waiting import wait_until

PAN = "6228480000000000018"
SECTOR = 4096


def atcs(store, table="records"):
    col = "raw"
    rows = store.query("SELECT %s FROM %s" % (col, table))
    out = []
    for (raw,) in rows:
        rec = record.decode(bytes(raw))
        if record.is_tap(rec["kind"]):
            out.append(int.from_bytes(rec["ext"][record.EXT_ATC], "big"))
    return sorted(out)


def wreck_journal(image_path):
    """Erase both watermark sectors and the first ring sector (the newest: it holds every record)."""
    with open(image_path, "r+b") as f:
        f.seek(JOURNAL_OFFSET)
        f.write(b"\xff" * (3 * SECTOR))


@pytest.mark.virtual_only("damages the journal in the flash image")
def test_a_damaged_journal_never_reuses_a_number_the_host_holds(board, events, tmp_path):
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db)
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    served = Served(board, store, None)
    seen = 0
    try:
        for atc in (1, 2, 3):
            seen, ev = tap(scanner, events, payment_code(PAN, atc), seen)
            assert ev["text"] == "PAID 2.00"
        wait_until(lambda: atcs(store) == [1, 2, 3], timeout=20, interval=0.2, what="three taps stored",
                   context=board.console_text)
    finally:
        served.close()
    held = store.seq_high(terminal)
    board.power_cut()
    wreck_journal(board.flash)
    mark = board.console_mark()
    board.power_on()
    board.wait_console(b"ready:", timeout=30, since=mark)
    seen = len(events.items)
    for atc in (4, 5):  # offline: numbered from the damaged journal, at or below what the host holds
        seen, ev = tap(scanner, events, payment_code(PAN, atc), seen)
        assert ev["text"] == "PAID 2.00"
    served = Served(board, store, None)
    try:
        board.wait_console(b"uplink: host holds records up to #%d; sequence continues at #%d" % (held, held + 1),
                           timeout=30, since=mark)
        for atc in (6, 7):
            seen, ev = tap(scanner, events, payment_code(PAN, atc), seen)
            assert ev["text"] == "PAID 2.00"
        wait_until(lambda: atcs(store) == [1, 2, 3, 6, 7], timeout=30, interval=0.2, what="the later taps stored",
                   context=board.console_text)
        wait_until(lambda: [4, 5] == sorted(a for a in atcs(store, "conflicts") if a in (4, 5)), timeout=30,
                   interval=0.2, what="the offline taps kept aside as conflicts", context=board.console_text)
        board.wait_console(b"(conflict): kept in quarantine", timeout=20, since=mark)
        later = store.query("SELECT seq FROM records WHERE seq > ?", (held,))
        assert len(later) >= 3  # the jump record and both later taps, all above the host's old seq_high
        kinds = [k for (k,) in store.query("SELECT kind FROM records WHERE seq = ?", (held + 1,))]
        assert kinds == [record.KIND_SEQ_JUMP]
        refused = store.refused(terminal)
        assert all(r[2] == refusal.CONFLICT and r[5] for r in refused)  # named and delivered
        status = wait_until(lambda: [s for s in [store.latest_status(terminal)] if s and s["quarantined"]
                                     and s["depth"] == 0], timeout=30, interval=0.2,
                            what="a STATUS with the quarantine and an empty queue", context=board.console_text)[0]
        assert status["quarantined"] == len(refused)
    finally:
        served.close()
        scanner.close()
