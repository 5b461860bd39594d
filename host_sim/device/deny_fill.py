"""Fill a terminal's deny list at county scale on the virtual board's flash, as the collector would:
sorted "ZDD2" bundles of protocol/bundle.BUNDLE_TOKENS tokens, each staged in flash and applied with
DenyList.apply_staged.  Shared by `bench denylist` (host_sim/device/bench_denylist.py) and the
virtual-board test that boots a terminal holding 200 000 entries.

Run as a program: argv entries, then tokens (hex) to list as one more delta; the image is ZF_FLASH.
"""

import os
import struct
import sys
import time

from firmware.denylist import DenyList
from firmware.denylist_merge import flash_bytes
from protocol import bundle

ROOT = "/flash/config"
PATH = ROOT + "/deny.bin"  # firmware/app.py: the terminal's deny list
STAGE = ROOT + "/stage.bin"


class Tokens:
    """Token i, ascending in i and spread over the whole 128-bit range, made without a table."""

    def __init__(self, n):
        self.step = (1 << 128) // n

    def listed(self, i):
        return (i * self.step + ((i * 2654435761) % (1 << 32)) * (self.step >> 33)).to_bytes(16, "big")

    def added(self, i):
        """A token between listed(i) and listed(i + 1): what a delta adds."""
        return (i * self.step + (self.step >> 1) + ((i * 40503) % (1 << 16))).to_bytes(16, "big")


def stage(adds, removes, base, version):
    """Write a "ZDD2" bundle of the ascending iterables' tokens to STAGE; (n_add, n_remove)."""
    n_add = n_remove = 0
    with open(STAGE, "wb") as f:
        f.write(bytes(bundle.HEAD))
        for t in adds:
            f.write(t)
            n_add += 1
        for t in removes:
            f.write(t)
            n_remove += 1
        f.seek(0)
        f.write(bundle.MAGIC + struct.pack("<IIII", base, version, n_add, n_remove))
    return n_add, n_remove


def apply(d, version, adds, removes):
    """Stage a delta and apply it as the config receiver does once the digest checked; microseconds."""
    import gc

    n_add, n_remove = stage(adds, removes, d.version, version)
    gc.collect()
    t0 = time.ticks_us()
    d.apply_staged(STAGE, bundle.HEAD, version, n_add, n_remove, True)
    us = time.ticks_diff(time.ticks_us(), t0)
    os.remove(STAGE)
    return us


def install(d, entries):
    """List Tokens(entries).listed(0 .. entries-1) in bundles; the number of bundles."""
    toks = Tokens(entries)
    parts = (entries + bundle.BUNDLE_TOKENS - 1) // bundle.BUNDLE_TOKENS
    for k in range(parts):
        apply(d, d.version + 1, (toks.listed(i) for i in range(k, entries, parts)), ())
    return parts


def mount():
    import board

    board.mount_flash()
    try:
        os.mkdir(ROOT)
    except OSError:
        pass


def main(entries, extra):
    from host_sim.device import results

    mount()
    d = DenyList(PATH)
    install(d, entries)
    if extra:
        d.apply(d.version + 1, [bytes.fromhex(t) for t in extra])
    results.report({"version": d.version, "count": d.count, "flash_bytes": flash_bytes(d)})


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
