"""`bench denylist` inside MicroPython: the deny list (firmware/denylist.py) on the virtual board's
littlefs partition (the flash image ZF_FLASH, mounted by the board module as the terminal mounts it).

argv: entries, lookups, delta size (additions; a tenth as many removals), the file holding an RSA
modulus (decimal), a signature and its digest (hex), one per line.

1. install: `entries` tokens arrive as sorted "ZDD2" bundles of protocol/bundle.BUNDLE_TOKENS each (as
   the collector sends them), each staged in flash and applied (host_sim/device/deny_fill.py);
2. three deltas of `delta` additions and delta/10 removals, each into the overlay (timed);
3. lookups with base and overlay both in use: listed tokens of the base and of the overlay and
   tokens never listed, interleaved (each timed);
4. one more delta, which no longer fits the overlay: merged into a new base (timed);
5. the heap a loaded list holds, measured by gc.mem_alloc() around opening it and searching it;
6. the RSA-2048 verify of the same run (protocol/rsa.py).
"""

import gc
import hashlib
import os
import sys
import time

from firmware.denylist import DenyList
from firmware.denylist_merge import OVERLAY_MAX, flash_bytes
from host_sim.device import results
from host_sim.device.deny_fill import PATH, Tokens, apply, install, mount
from protocol import rsa


def never(i):
    return hashlib.sha256(b"never listed %d" % i).digest()[:16]


def main(entries, lookups, delta, rsa_file):
    samples = [0] * lookups  # allocated first, while the heap is in one piece
    mount()
    toks = Tokens(entries)
    d = DenyList(PATH)
    t0 = time.ticks_ms()
    parts = install(d, entries)
    install_ms = time.ticks_diff(time.ticks_ms(), t0)
    flash_install = flash_bytes(d)
    count_install = d.count

    removed = delta // 10
    spacing = entries // (delta + 1)
    version = parts
    overlay_us = []
    for r in range(3):
        version += 1
        adds = (toks.added(r + j * spacing) for j in range(delta))
        removes = (toks.listed(r + 1 + j * spacing) for j in range(removed))
        overlay_us.append(apply(d, version, adds, removes))
    merges_before = getattr(d, "merges", 0)

    wrong = 0
    for j in range(lookups):  # each probe made just before it is timed: no table of them in the heap
        pick = j % 3
        if pick == 0:
            i = (j * 7919 + 5) % entries
            token, expected = toks.listed(i), not (1 <= i % spacing <= 3 and i // spacing < removed)
        elif pick == 1:
            token, expected = toks.added((j // 3) % 3 + ((j * 31) % delta) * spacing), True
        else:
            token, expected = never(j), False
        t0 = time.ticks_us()
        got = d.contains(token)
        samples[j] = time.ticks_diff(time.ticks_us(), t0)
        if got != expected:
            wrong += 1
    lookup = results.stats(samples)
    count_lookup = d.count

    version += 1
    wide = entries // (delta + OVERLAY_MAX + 1)
    adds = (toks.added(3 + j * wide) for j in range(delta + OVERLAY_MAX))
    merge_us = apply(d, version, adds, ())
    merged = getattr(d, "merges", 0) > merges_before

    d.close()
    probes = [toks.listed(i) for i in range(0, entries, entries // 50)] + [never(i) for i in range(50)]
    gc.collect()
    before = gc.mem_alloc()
    d = DenyList(PATH)
    hits = sum(1 for t in probes if d.contains(t))  # the 50 listed ones, less those a delta removed
    gc.collect()
    heap_bytes = gc.mem_alloc() - before

    with open(rsa_file) as f:
        n, sig, digest = [line.strip() for line in f.read().split("\n")[:3]]
    n, sig, digest = int(n), bytes.fromhex(sig), bytes.fromhex(digest)
    rsa_samples = []
    ok = False
    for _ in range(20):
        t0 = time.ticks_us()
        ok = rsa.verify_digest(digest, sig, n)
        rsa_samples.append(time.ticks_diff(time.ticks_us(), t0))
    assert ok
    rsa_us = results.stats(rsa_samples)["median_us"]
    st = os.statvfs("/flash")

    results.report({
        "runtime": results.runtime_name(),
        "entries": count_install,
        "entries_at_lookup": count_lookup,
        "install_ms": install_ms,
        "install_bundles": parts,
        "lookup_us": {"median": lookup["median_us"], "p99": lookup["p99_us"], "n": lookup["n"]},
        "lookup_wrong": wrong,
        "apply_delta_us": sorted(overlay_us)[1],
        "apply_delta_us_each": overlay_us,
        "delta_tokens": delta + removed,
        "merge_us": merge_us,
        "merged": merged,
        "merge_tokens": delta + OVERLAY_MAX,
        "heap_bytes": heap_bytes,
        "heap_check_hits": hits,
        "flash_bytes": flash_install,
        "flash_bytes_now": flash_bytes(d),
        "flash_used_bytes": (st[2] - st[3]) * st[0],
        "flash_partition_bytes": st[2] * st[0],
        "rsa_verify_us": rsa_us,
    })


main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
