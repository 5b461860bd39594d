"""`time` on a simulated virtual board: ticks follow the simulator's clock (ZF_CLOCK).

`sim run` puts this directory first on the board's MICROPYPATH, so the firmware's and asyncio's
`import time` find it.  ticks_ms() is the host's ticks plus every second the simulator's clock has
moved since the board started: a jump of the clock between two taps is a jump of the ticks, so timers
(asyncio sleeps, the declines' coalescing window) see the simulated gap.  Everything else is utime's.
"""

import os

import utime
from utime import *  # noqa: F403  (the rest of `time`, unchanged)

_PATH = os.getenv("ZF_CLOCK") or ""
_REREAD_MS = 20  # the file is read at most this often: asyncio asks for ticks on every turn


def _read():
    if not _PATH:
        return None
    try:
        with open(_PATH) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


_start = _read()
_offset_ms = 0
_read_at = utime.ticks_ms()


def ticks_ms():
    global _offset_ms, _read_at
    real = utime.ticks_ms()
    if utime.ticks_diff(real, _read_at) >= _REREAD_MS:
        _read_at = real
        now = _read()
        if now is not None and _start is not None and now > _start:
            _offset_ms = (now - _start) * 1000
    return utime.ticks_add(real, _offset_ms)
