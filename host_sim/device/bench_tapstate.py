"""`bench tapstate` inside MicroPython: firmware/tapstate.py on the virtual board's littlefs partition (the
flash image ZF_FLASH, mounted by the board module as the terminal mounts it).

argv: credentials to fill in first, taps to time.

1. fill: `credentials` distinct tokens put once each (at the bound the buckets are full and evict);
2. taps: per tap one get and one put of a kept credential, as a tap costs, each timed, with the
   littlefs flash operations (program calls, block erases) the puts caused;
3. boot: a new TapState over the same files (reading every bucket header), timed;
4. the heap a TapState holds.
"""

import gc
import hashlib
import sys
import time

import board
from firmware import tapstate
from firmware.tapstate import Entry, TapState
from host_sim.device import results


def token(i):
    return hashlib.sha256(b"credential %d" % i).digest()[:16]


def main(credentials, taps):
    get_us = [0] * taps
    put_us = [0] * taps
    root = board.mount_flash()
    part = board.vfs_partition()
    s = TapState(root)
    seq = s.applied
    t0 = time.ticks_ms()
    for i in range(credentials):
        e = Entry()
        e.last_s = 1700000000 + i
        seq += 1
        s.put(token(i), e, seq)
    fill_ms = time.ticks_diff(time.ticks_ms(), t0)
    programs, erases = part.programs, part.erases
    for j in range(taps):
        t = token(credentials - 1 - (j * 7919) % min(credentials, 2000))  # the most recent ones: still kept
        t0 = time.ticks_us()
        e = s.get(t)
        get_us[j] = time.ticks_diff(time.ticks_us(), t0)
        if e is None:
            e = Entry()
        e.rides += 1
        e.last_s = 1800000000 + j
        seq += 1
        t0 = time.ticks_us()
        s.put(t, e, seq)
        put_us[j] = time.ticks_diff(time.ticks_us(), t0)
    programs, erases = part.programs - programs, part.erases - erases
    s = None
    gc.collect()
    before = gc.mem_alloc()
    t0 = time.ticks_us()
    s = TapState(root)
    boot_us = time.ticks_diff(time.ticks_us(), t0)
    kept = s.get(token(credentials - 1)) is not None
    gc.collect()
    heap = gc.mem_alloc() - before
    g, p = results.stats(get_us), results.stats(put_us)
    results.report({
        "runtime": results.runtime_name(),
        "credentials": credentials,
        "bound": tapstate.BUCKETS * tapstate.PER_BUCKET,
        "bucket_bytes": tapstate.MAX_FILE,
        "fill_ms": fill_ms,
        "get_us": {"median": g["median_us"], "p99": g["p99_us"]},
        "put_us": {"median": p["median_us"], "p99": p["p99_us"]},
        "tap_us": {"median": g["median_us"] + p["median_us"], "p99": g["p99_us"] + p["p99_us"]},
        "flash_programs_per_tap": round(programs / taps, 2),
        "flash_erases_per_tap": round(erases / taps, 2),
        "boot_us": boot_us,
        "heap_bytes": heap,
        "kept": kept,
        "applied": s.applied,
    })


main(int(sys.argv[1]), int(sys.argv[2]))
