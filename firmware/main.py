"""Boot entry point: run the terminal application on whichever board this is.

A provisioned terminal's REPL is locked first (firmware/lockdown.py); if the application then fails,
the board resets rather than leave an open REPL behind.
"""
import board
from firmware import lockdown

locked = lockdown.at_boot(board)
try:
    from firmware import app

    app.run(board)
except Exception as e:
    if not locked:
        raise
    import sys

    sys.print_exception(e)
    import machine

    machine.reset()
