"""Runs first on every boot, before main.py or the REPL: mount the flash and work from it."""
import os

import board

os.chdir(board.mount_flash())
