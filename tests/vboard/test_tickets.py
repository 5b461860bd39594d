"""Signed tickets on the virtual board: keys provisioned with mpremote into /flash/keys/tickets, a
ticket admitted and journalled, its allowance enforced, a forged and an expired ticket declined with
their reasons shown on the display.
"""

import time

import pytest

from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import tickets
from tests.vboard.helpers import mpremote


@pytest.mark.virtual_only("powers the firmware off and on")
def test_tickets_end_to_end(board, events, tmp_path):
    issuer_key, other_key = tickets.generate_key(), tickets.generate_key()
    ring = tmp_path / "tickets"
    ring.write_text("# test issuer\n" + tickets.keyring_line(issuer_key, 9, 1) + "\nnot a key line\n")
    port = board.ports["console"]
    mpremote(port, "fs", "cp", str(ring), ":/flash/keys/tickets")
    mark = board.console_mark()
    board.restart()
    board.wait_console(b"ready:", timeout=20, since=mark)
    assert "ticket keys: 1 trusted, 0 revoked, 1 bad lines" in board.console_text()[mark:]
    now = int(time.time())
    good = tickets.issue(issuer_key, 9, 1, b"GATE0001", valid_from=now - 60, valid_to=now + 3600, entries=1)
    forged = tickets.issue(other_key, 9, 1, b"GATE0002", valid_from=now - 60, valid_to=now + 3600)
    expired = tickets.issue(issuer_key, 9, 1, b"GATE0003", valid_from=now - 7200, valid_to=now - 3600)
    scanner = ScannerEmulator(port=board.ports["scanner"])
    i = -1
    for text, want in [(good, ("WELCOME", "entry 1 #000001")), (good, ("DECLINED", "ticket used up")),
                       (forged, ("DECLINED", "forged ticket")), (expired, ("DECLINED", "ticket expired"))]:
        scanner.present(text)
        i, ev = events.wait_display(i + 1)
        assert (ev["text"], ev["detail"]) == want
    assert "tap #1 accepted 0 fen" in board.console_text()
    scanner.close()
