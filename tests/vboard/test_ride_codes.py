"""Ride codes end to end on the virtual board: `provision --ride-roots` gives the terminal the test roots
(SM2 and P-256), a fresh code of each is paid at the ride fare and journalled as kind 6 with its billing
extension (each new issuer key prepared while the terminal idles, not inside the tap), the same code again
is "already used", a code past its freshness window is "code too old",
and once the collector delivers a signed fleet bundle revoking the SM2 issuer (kind 5, no reboot) a fresh
SM2 code is refused "ride issuer revoked" while P-256 codes still pass, also after a power cut, after
which a code accepted before it is still "already used" (rebuilt from the journal)."""

import re
import struct
import time

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import bundle, provision, ridecodes
from protocol import fleet, record, ridecode
from tests.vboard.helpers import READY_USED_BUDGET, Served, tap
from tests.waiting import wait_until

SM2 = ridecode.ALG_SM2
P256 = ridecode.ALG_P256


@pytest.mark.virtual_only("a power cut by kill")
def test_ride_codes_on_a_virtual_board(board, events, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    roots = tmp_path / "ride-roots"
    roots.write_text(ridecodes.root_lines())
    db = str(tmp_path / "c.db")
    mark = board.console_mark()
    terminal = provision.provision(board.ports["console"], db, config_keys=str(keys / "authority.pem.pub"),
                                   ride_roots=str(roots))
    board.wait_console(b"ready:", timeout=20, since=mark)
    ready = [ln for ln in board.console_text()[mark:].splitlines() if ln.startswith("ready:")][-1]
    assert int(re.search(r"heap (\d+) used", ready).group(1)) <= READY_USED_BUDGET, ready  # ride code: loaded later
    store = Store(db)
    scanner = ScannerEmulator(board.ports["scanner"])
    served = None
    seen = 0
    try:
        now = int(time.time())
        sm2 = ridecodes.issue(SM2, now, user_id=b"RIDER001", counter=1, product=4)
        p256 = ridecodes.issue(P256, now, user_id=b"RIDER002", counter=1)
        old = ridecodes.issue(SM2, now, user_id=b"RIDER001", counter=2, generated=now - ridecode.WINDOW - 30)
        for code, want in [(sm2, "PAID 2.00"), (sm2, "DECLINED"), (p256, "PAID 2.00"), (p256, "DECLINED"),
                           (old, "DECLINED")]:
            seen, ev = tap(scanner, events, code, seen)
            assert ev["text"] == want, (ev, board.console_text()[-3000:])
            if want == "DECLINED":
                assert ev["detail"] == ("code too old" if code is old else "already used"), ev
        assert "ride roots: 2 trusted, 0 bad lines" in board.console_text()
        # each new issuer key got its comb table while the terminal was idle, not inside a tap
        wait_until(lambda: board.console_text()[mark:].count("ride codes: issuer key table built in") == 2,
                   timeout=10, what="both issuer keys prepared while idle", context=board.console_text)

        shelf = tmp_path / "bundles"
        shelf.mkdir()
        key, key_id = bundle.load_signer(str(keys / "authority.pem"))
        revoked = bundle.ride_revoked_body([(ridecodes.ISSUERS[SM2], 1)])
        (shelf / "ride-revoked-1.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_RIDE_REVOKED, 1, revoked))
        served = Served(board, store, None, bundles=str(shelf))
        board.wait_console(b"fleet ride-revoked: version 1 active", timeout=30)
        now = int(time.time())
        seen, ev = tap(scanner, events, ridecodes.issue(SM2, now, user_id=b"RIDER001", counter=3), seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ride issuer revoked")
        seen, ev = tap(scanner, events, ridecodes.issue(P256, now, user_id=b"RIDER002", counter=2), seen)
        assert ev["text"] == "PAID 2.00", ev

        rows = wait_until(lambda: [r for r in [store.query(
            "SELECT seq FROM records WHERE terminal = ? AND kind = ? AND decision = ? ORDER BY seq",
            (terminal, record.KIND_RIDE_CODE, record.ACCEPTED))] if len(r) == 3],
            timeout=20, interval=0.2, what="three ride codes stored", context=board.console_text)[0]
        assert len(rows) == 3
        served.close()
        served = None

        board.power_cut()  # the revocation is in flash: after a reboot the first ride code reads it
        mark = board.console_mark()
        board.power_on()
        board.wait_console(b"ready:", timeout=20, since=mark)
        wait_until(lambda: [e for e in events.items[seen:] if e.get("out") == "display" and e.get("text") == "READY"],
                   timeout=10, what="the READY display after the power cut", context=board.console_text)
        seen = len(events.items)
        seen, ev = tap(scanner, events, p256, seen)  # accepted before the power cut, still fresh: from the journal
        assert (ev["text"], ev["detail"]) == ("DECLINED", "already used")
        now = int(time.time())
        seen, ev = tap(scanner, events, ridecodes.issue(SM2, now, user_id=b"RIDER001", counter=4), seen)
        assert (ev["text"], ev["detail"]) == ("DECLINED", "ride issuer revoked")
        seen, ev = tap(scanner, events, ridecodes.issue(P256, now, user_id=b"RIDER002", counter=3), seen)
        assert ev["text"] == "PAID 2.00"
    finally:
        scanner.close()
        if served is not None:
            served.close()
        store.close()
    raw = [r for r in store_records(db, terminal) if r["kind"] == record.KIND_RIDE_CODE
           and r["decision"] == record.ACCEPTED]
    first = raw[0]
    assert first["amount"] == 200 and first["token"] == ridecode.token(
        {"issuer": ridecodes.ISSUERS[SM2], "user_id": b"RIDER001"})
    issuer, kid, user, counter, generated, product = struct.unpack(">HB8sIIH", first["ext"][record.EXT_RIDE])
    assert (issuer, kid, user, counter, product) == (ridecodes.ISSUERS[SM2], 1, b"RIDER001", 1, 4)
    assert set(first["ext"]) == {record.EXT_RIDE}  # what the platform bills by, nothing else


def store_records(db, terminal):
    s = Store(db)
    try:
        return [record.decode(r[0]) for r in s.query("SELECT raw FROM records WHERE terminal = ? ORDER BY seq",
                                                     (terminal,))]
    finally:
        s.close()
