"""The terminal's heap budget on the virtual board (the unix port keeps bytecode in the heap)."""

import re

from tests.vboard.helpers import READY_USED_BUDGET

READY_FREE_MINIMUM = 64 * 1024


def test_heap_at_ready_stays_within_budget(board):
    line = [ln for ln in board.console_text().splitlines() if ln.startswith("ready:")][-1]
    used, free = map(int, re.search(r"heap (\d+) used (\d+) free", line).groups())
    assert used <= READY_USED_BUDGET, line
    assert free >= READY_FREE_MINIMUM, line
