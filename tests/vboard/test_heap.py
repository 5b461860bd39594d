"""The terminal's heap budget on the virtual board (the unix port keeps bytecode in the heap)."""

import re

# At ready: all code a terminal with QR, tickets, NFC/EMV and the link protocol loads, plus its data.
# A change that pushes this over the budget must free memory elsewhere or justify a new budget.
READY_USED_BUDGET = 170 * 1024
READY_FREE_MINIMUM = 64 * 1024


def test_heap_at_ready_stays_within_budget(board):
    line = [ln for ln in board.console_text().splitlines() if ln.startswith("ready:")][-1]
    used, free = map(int, re.search(r"heap (\d+) used (\d+) free", line).groups())
    assert used <= READY_USED_BUDGET, line
    assert free >= READY_FREE_MINIMUM, line
