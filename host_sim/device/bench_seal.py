"""`bench seal` inside MicroPython (and CPython): what sealing card data to the collector costs the terminal.

argv: iterations, a file holding the collector's modulus (hex; the unix port's argv is short).  Times with
the real firmware/sealing.Sealer over a journal stand-in (no flash): "seal", one record's card data sealed
under the current epoch key (the tap path); "wrap", a new epoch key drawn and RSA-OAEP-wrapped (prepare(),
at boot and when idle); "hmac", the reference operation, one HMAC-SHA256 of 1024 bytes."""

import sys
import time

from firmware import sealing
from host_sim.device import results
from protocol import crypto, tlv

_NS = getattr(time, "perf_counter_ns", None)  # CPython; MicroPython has ticks_us


def _now():
    return _NS() // 1000 if _NS is not None else time.ticks_us()


def _since(t0):
    return _now() - t0 if _NS is not None else time.ticks_diff(time.ticks_us(), t0)


class _Journal:
    full = False

    def __init__(self):
        self.next_seq = 1

    def append(self, build):
        build(self.next_seq)
        self.next_seq += 1
        return self.next_seq - 1


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = _now()
        fn()
        out.append(_since(t0))
    return results.stats(out)


def runtime_name():
    if sys.implementation.name == "micropython":
        return results.runtime_name()
    v = sys.version_info
    return "cpython %d.%d.%d %s" % (v[0], v[1], v[2], sys.platform)


def main(n, modulus_file):
    with open(modulus_file) as f:
        modulus = int(f.read().strip(), 16)
    sealing.EPOCH_RECORDS = 1 << 30  # steady state: no epoch change (and its wrap) inside the timings
    sealer = sealing.Sealer(modulus, _Journal(), b"BENCH001", lambda: 1800000000)
    sealer.prepare()
    data = (tlv.encode(0x5A, bytes.fromhex("6228480000000000018F")) + tlv.encode(0x5F24, b"\x29\x05\x31")
            + tlv.encode(0x57, bytes.fromhex("6228480000000000018D29052010000000000F")) + tlv.encode(0x9F26, bytes(8)))
    token = bytes(range(16))
    sealer(data, token)  # the epoch's key records: not part of a steady-state tap

    def wrap():
        sealer._next = None
        sealer.prepare()

    mac_key, message = bytes(range(32)), bytes(1024)
    result = {"seal": timed(lambda: sealer(data, token), n), "wrap": timed(wrap, max(1, n // 10)),
              "hmac": timed(lambda: crypto.hmac_sha256(mac_key, message), n)}
    results.report([runtime_name(), len(data), result])


main(int(sys.argv[1]), sys.argv[2])
