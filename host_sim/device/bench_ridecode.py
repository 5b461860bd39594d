"""`bench ridecode` inside MicroPython: the terminal's whole check of one ride code (protocol/ridecode.py
Verifier.check: decode, chain, freshness), per algorithm: the first code of an issuer (root -> issuer
verified, issuer key prepared) and the next codes (issuer certificate remembered).

argv: the inputs file (lines: now, then per algorithm "alg root-line code code2"), iterations."""

import gc
import sys
import time

from host_sim.device import results
from protocol import ridecode


def timed(verifier, codes, now):
    samples = []
    for code in codes:
        t0 = time.ticks_us()
        verdict = verifier.check(code, now)[0]
        samples.append(time.ticks_diff(time.ticks_us(), t0))
        if verdict != ridecode.OK:
            raise ValueError("bench code refused: " + verdict)
    stats = results.stats(samples)
    stats["min_us"] = min(samples)
    return stats


def main(path, n):
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    now = int(lines[0][0])
    out = {}
    out["runtime"] = results.runtime_name()
    for row in lines[1:]:
        name, root_id, alg, key, code, returning = row[:6]
        riders = row[6:]
        entry = ridecode.parse_root_line("root %s %s %s" % (root_id, alg, key))
        if entry is None:
            raise ValueError("bench root line empty")
        _, alg_id, raw = entry
        gc.collect()
        verifier = ridecode.Verifier({int(root_id): (alg_id, raw)})
        t0 = time.ticks_us()
        verdict = verifier.check(code, now)[0]
        first = time.ticks_diff(time.ticks_us(), t0)
        if verdict != ridecode.OK:
            raise ValueError("bench code refused: " + verdict)
        gc.collect()
        t0 = time.ticks_us()
        if not verifier.prepare_pending():
            raise ValueError("bench: no issuer key waited for its table")
        prepare = time.ticks_diff(time.ticks_us(), t0)
        out[name + "_first_code_of_issuer_us"] = first
        out[name + "_issuer_prepare_us"] = prepare
        out[name + "_code"] = timed(verifier, riders, now)
        out[name + "_returning_code"] = timed(verifier, [returning] * n, now)
    results.report(out)


main(sys.argv[1], int(sys.argv[2]))
