"""Boot entry point: run the terminal application on whichever board this is.

A provisioned terminal (device key and config authority keys on flash) locks its REPL first: a Ctrl-C
on the console no longer opens it; the technician console's `service` does (firmware/console_shell.py),
and a fresh board stays open.  If the application then fails, a locked board resets rather than leave an
open REPL behind.
"""
import os

import board

root = board.mount_flash()
try:
    os.stat(root + "/keys/device.key")
    os.stat(root + "/keys/config")
    board.repl_interrupt(False)
    locked = True
except OSError:
    locked = False
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
