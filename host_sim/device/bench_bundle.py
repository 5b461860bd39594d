"""`bench bundle` inside MicroPython: fleet bundle activation (firmware/config/receiver.py) and the RSA check.

argv: the terminal's root directory, iterations, the file holding the authority's modulus (decimal;
the unix port refuses an argument longer than 255 bytes), then one NAME:KIND:VERSION:PATH per bundle."""

import hashlib
import os
import sys
import time

from firmware.config.receiver import ConfigReceiver
from host_sim.device import results
from protocol import rsa


def activations(receiver, root, kind, version, data, n):
    """Times ConfigReceiver activation of `data` as a fully staged bundle, `n` times."""
    digest = hashlib.sha256(data).digest()
    samples = []
    for _ in range(n):
        with open(receiver.stage, "wb") as f:
            f.write(data)
        try:
            os.remove(root + "/config/fleet-%d.bin" % kind)
        except OSError:
            pass
        receiver.offer = (kind, version, len(data), digest)
        t0 = time.ticks_us()
        receiver._activate()
        samples.append(time.ticks_diff(time.ticks_us(), t0))
    return samples


def verifications(data, modulus, n):
    """Times the RSA signature check alone of the bundle `data`, `n` times."""
    signed = hashlib.sha256(data[:-256]).digest()
    sig = data[-256:]
    samples = []
    ok = False
    for _ in range(n):
        t0 = time.ticks_us()
        ok = rsa.verify_digest(signed, sig, modulus)
        samples.append(time.ticks_diff(time.ticks_us(), t0))
    assert ok
    return samples


def main(root, n, modulus, cases):
    out = {}
    receiver = ConfigReceiver(root, None, bytes(32))
    for case in cases:
        name, kind, version, src = case.split(":", 3)
        with open(src, "rb") as f:
            data = f.read()
        out[name] = dict(results.stats(activations(receiver, root, int(kind), int(version), data, n)),
                         bytes=len(data))
        if name == "fares":
            out["rsa_verify"] = results.stats(verifications(data, modulus, n))
    out["runtime"] = results.runtime_name()
    results.report(out)


with open(sys.argv[3]) as modulus_file:
    modulus = int(modulus_file.read())
main(sys.argv[1], int(sys.argv[2]), modulus, sys.argv[4:])
