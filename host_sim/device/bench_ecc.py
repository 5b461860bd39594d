"""`bench ecc` inside MicroPython: SM2 and ECDSA P-256 verification (with and without a prepared key),
SM3 of 64 bytes and one RSA-2048 verify, timed per iteration in the same run.

argv: the file of inputs (one hex field per line: SM2 key, SM2 message, SM2 signature, P-256 key,
P-256 message, P-256 signature, RSA modulus, RSA message, RSA signature), iterations.
(The unix port refuses an argument longer than 255 bytes, so the inputs come in a file.)"""

import gc
import sys
import time

from host_sim.device import results
from protocol import ecc, rsa, sm3


def timed(n, fn, *args):
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        ok = fn(*args)
        out.append(time.ticks_diff(time.ticks_us(), t0))
        if ok is False:
            raise ValueError("bench signature refused")
    best = min(out)
    stats = results.stats(out)
    stats["min_us"] = best  # the run least disturbed by other processes on a shared machine
    return stats


def prepared(curve, key):
    """(FixedKey, microseconds to build it, bytes of heap it keeps)."""
    gc.collect()
    free = gc.mem_free()
    t0 = time.ticks_us()
    fixed = ecc.prepare_key(curve, key)
    spent = time.ticks_diff(time.ticks_us(), t0)
    gc.collect()
    return fixed, spent, free - gc.mem_free()


def main(path, n):
    with open(path) as f:
        fields = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    sm2_key, sm2_msg, sm2_sig, p256_key, p256_msg, p256_sig, modulus, rsa_msg, rsa_sig = fields
    modulus = int.from_bytes(modulus, "big")
    gc.collect()
    free = gc.mem_free()
    t0 = time.ticks_us()
    ecc.SM2.g_table()
    generator_us = time.ticks_diff(time.ticks_us(), t0)
    ecc.P256.g_table()
    gc.collect()
    generator_bytes = free - gc.mem_free()
    sm2_fixed, prepare_us, table_bytes = prepared(ecc.SM2, sm2_key)
    p256_fixed, _, _ = prepared(ecc.P256, p256_key)
    out = {
        "runtime": results.runtime_name(),
        "sm3_64_bytes": timed(n, sm3.digest, bytes(64)),
        "rsa2048_verify": timed(n, rsa.verify, rsa_msg, rsa_sig, modulus),
        "sm2_verify": timed(n, ecc.verify_sm2, sm2_key, sm2_msg, sm2_sig),
        "sm2_verify_fixed_key": timed(n, ecc.verify_sm2, sm2_fixed, sm2_msg, sm2_sig),
        "p256_verify": timed(n, ecc.verify_p256, p256_key, p256_msg, p256_sig),
        "p256_verify_fixed_key": timed(n, ecc.verify_p256, p256_fixed, p256_msg, p256_sig),
        "generator_table_us": generator_us,
        "generator_tables_bytes": generator_bytes,
        "prepare_key_us": prepare_us,
        "table_bytes": table_bytes,
    }
    results.report(out)


main(sys.argv[1], int(sys.argv[2]))
