"""`bench promotion` inside MicroPython: what the county's promotions add to a tap.

argv: iterations, a directory for the budget file.  Times with the real firmware code: "draw",
Decider.promotion_offers + promote for one tap against a profile of 8 programmes (the last one applies,
chance 1: the most work a tap can cost); "spend", Promotions.spend rewriting the budget file (on the unix
port's file system, not littlefs); "hmac", the reference operation, one HMAC-SHA256 of 1024 bytes.  Also
the bytes allocated by one draw."""

import gc
import sys
import time

from firmware import decision
from host_sim.device import results
from protocol import crypto, record

T0 = 1796600000


def timed(fn, n):
    out = [0] * n  # allocated before the clock runs
    gc.collect()
    for i in range(n):
        t0 = time.ticks_us()
        fn()
        out[i] = time.ticks_diff(time.ticks_us(), t0)
    return results.stats(out)


def allocated(fn):
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def programme(pid, kinds):
    return {"id": pid, "kinds": kinds, "chance_ppm": 1000000, "discount_fen": 50, "terminal_daily_fen": 100000000,
            "programme_daily_fen": 100000000, "from": "2026-12-01", "until": "2026-12-31"}


def main(n, root):
    profile = {"profile": "bus", "group": "bench", "utc_offset_s": 28800,
               "promotions": [programme(i, ["ride_code"]) for i in range(1, 8)] + [programme(8, ["qr_cpm"])]}
    dec = decision.Decider(None)
    dec.active.profile = profile
    dec.load_promotions(root, bytes(32))
    promos = dec.promotions
    if promos is None:
        raise RuntimeError("no promotions loaded")
    terminal, token = b"BENCH001", bytes(16)
    seqs = [0]

    def draw():
        d = decision.Decision(decision.ACCEPT, kind=record.KIND_QR_CPM, token=token, amount=200)
        offers = dec.promotion_offers(d, T0)
        seqs[0] += 1
        dec.promote(d, offers, terminal, seqs[0], T0)

    def spend():
        seqs[0] += 1
        promos.spend(8, 50, 20794, seqs[0])

    out = {}
    out["draw"] = timed(draw, n)
    out["spend"] = timed(spend, max(1, n // 10))
    out["draw_alloc_bytes"] = allocated(draw)
    mac_key, message = bytes(range(32)), bytes(1024)
    out["hmac"] = timed(lambda: crypto.hmac_sha256(mac_key, message), n)
    results.report([results.runtime_name(), out])


main(int(sys.argv[1]), sys.argv[2])
