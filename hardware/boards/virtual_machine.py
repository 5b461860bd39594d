"""`machine` on the virtual board: the unix port's module plus reset(), which a chip's ROM provides.

mpremote's `reset` and the firmware's watchdog call machine.reset().  The unix port has no reset, so
this module (installed as machine.mpy in the virtual board's root, shadowing the built-in module)
ends the process with RESET_SIGNAL (SIGUSR1, sent to itself: a SystemExit inside main.py would only
drop to the `-i` REPL); the launcher (host_sim/tools/vboard.py) powers the board up again through
main.py, as a hard reset does, whatever REPL mode the console was in."""

import os
import sys

from umachine import *  # noqa: F403 - everything the built-in module has

RESET_EXIT = 86


def reset():
    os.system("kill -USR1 $PPID")  # the shell's parent: this process
    sys.exit(RESET_EXIT)  # only if the signal could not be sent
