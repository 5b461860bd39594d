"""A terminal holding a county's deny list: 200 000 entries in its littlefs partition, filled through
sorted bundles as the collector sends them (host_sim/device/deny_fill.py), plus one card as the newest
delta.  It boots within the heap budget, refuses that card at its tap and lets another pay."""

import re

from host_sim import micropython
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import vboard
from protocol import tokens
from tests.vboard.helpers import READY_USED_BUDGET, Events, payment_code, tap

ENTRIES = 200000
BLOCKED_PAN = "6212345678901234569"
OTHER_PAN = "6228480000000000018"


def test_a_county_deny_list_keeps_the_heap_budget_and_refuses_a_listed_card(tmp_path):
    image = str(tmp_path / "flash.img")
    blocked = tokens.token(vboard.FACTORY_TOKEN_KEY[1], BLOCKED_PAN)  # the board's factory token key
    filled = micropython.run_program("deny_fill", [ENTRIES, blocked.hex()], heap="192k", board=True,
                                     env={"ZF_FLASH": image}, timeout=600)
    assert filled["count"] == ENTRIES + 1
    assert filled["flash_bytes"] < 1300 * 1024  # 6 bytes an entry and the bucket index
    board = vboard.VirtualBoard(image).start()
    try:
        board.wait_console(b"ready:", timeout=30)
        line = [ln for ln in board.console_text().splitlines() if ln.startswith("ready:")][-1]
        used = int(re.search(r"heap (\d+) used", line).group(1))
        assert used <= READY_USED_BUDGET, line
        events = Events(board.ports["events"])
        scanner = ScannerEmulator(board.ports["scanner"])
        try:
            seen, ev = tap(scanner, events, payment_code(BLOCKED_PAN, 9), 0)
            assert (ev["text"], ev["detail"]) == ("DECLINED", "card blocked")
            seen, ev = tap(scanner, events, payment_code(OTHER_PAN, 9), seen)
            assert ev["text"] == "PAID 2.00"
        finally:
            scanner.close()
            events.close()
    finally:
        board.stop()
