"""`bench frames` inside MicroPython: what one uplink frame of a 272-byte payload costs, per step.

argv: iterations."""

import sys
import time

from host_sim.device import results
from protocol import crypto, frame, link, session


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        fn()
        out.append(time.ticks_diff(time.ticks_us(), t0))
    return results.stats(out)


def main(n):
    payload = bytes((i * 7) & 0xFF for i in range(frame.MAX_PAYLOAD))[:272]
    wire = frame.encode(payload)
    reader = frame.FrameReader()
    key, nonce = bytes(range(16)), bytes(12)
    mac_key = bytes(range(32))
    result = {"encode": timed(lambda: frame.encode(payload), n),
              "decode": timed(lambda: reader.feed(wire), n),
              "aes_ctr": timed(lambda: crypto.aes_ctr(key, nonce, payload), n),
              "hmac": timed(lambda: crypto.hmac_sha256(mac_key, payload), n)}
    th = bytes(32)
    a = session.Session(mac_key, session.ROLE_TERMINAL, th)
    b = session.Session(mac_key, session.ROLE_HOST, th)
    clear = bytearray(len(payload) - session.OVERHEAD)
    link.pack_header(clear, link.RECORDS, 0, 1, 0)
    result["seal_open"] = timed(lambda: b.open(a.seal(clear)), n)
    results.report([results.runtime_name(), len(wire), result])


main(int(sys.argv[1]))
