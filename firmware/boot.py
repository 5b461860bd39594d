"""Runs first on every boot, before main.py or the REPL: mount the data flash at board.FLASH_MOUNT.

Code stays in the board's root filesystem (where MicroPython looks for main.py); configuration, keys,
logs and the journal live under the mount point.
"""
import board

board.mount_flash()
