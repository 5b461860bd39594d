"""`bench tap`'s reference inside MicroPython: one RSA-2048 verify (protocol/rsa.verify, e = 65537), timed
per iteration, so a tap's time can be read against the cost of the one signature a ticket carries.

argv: the file of inputs (modulus, message, signature, one hex field per line), iterations."""

import sys
import time

from host_sim.device import results
from protocol import rsa


def main(path, n):
    with open(path) as f:
        modulus, msg, sig = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    modulus = int.from_bytes(modulus, "big")
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        ok = rsa.verify(msg, sig, modulus)
        out.append(time.ticks_diff(time.ticks_us(), t0))
        if ok is False:
            raise ValueError("bench signature refused")
    best = min(out)
    stats = results.stats(out)
    stats["min_us"] = best
    stats["runtime"] = results.runtime_name()
    results.report(stats)


main(sys.argv[1], int(sys.argv[2]))
