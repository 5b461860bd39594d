"""`bench credentials` inside MicroPython: CPM decode, CPM checks and decision, ticket verify, timed per
iteration.

argv: payload, the file holding the keyring line, the file holding the ticket, now (s), iterations.
(The unix port refuses an argument longer than 255 bytes, so the long inputs come in files.)"""

import sys
import time

from host_sim.device import results
from protocol import cpm, crypto, ticket


def cpm_costs(payload, now, n):
    """(checks, decide) stats: decode + the offline checks of a payment code; a whole Decider.decide
    (checks, token, sealing the card data, the record's extensions)."""
    from firmware import decision

    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        tags = cpm.payment_data(cpm.decode(payload))
        if cpm.check(tags, now) != 0:
            raise ValueError("bench code refused")
        cpm.account_number(tags)
        out.append(time.ticks_diff(time.ticks_us(), t0))
    checks = results.stats(out)
    key = bytes(32)
    d = decision.Decider(bytes(16), sealer=lambda p, a: crypto.seal(key, bytes(12), p, a))
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        r = d.decide(payload, now)
        out.append(time.ticks_diff(time.ticks_us(), t0))
        if r.outcome != decision.ACCEPT:
            raise ValueError("bench code declined: %s" % r.reason_text())
    return checks, results.stats(out)


def main(payload, keyline, text, now, n):
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        objects = cpm.decode(payload)
        cpm.account_number(objects)
        cpm.deferred(objects)
        out.append(time.ticks_diff(time.ticks_us(), t0))
    cpm_stats = results.stats(out)
    ring = ticket.Keyring()
    ring.load_line(keyline)
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        fields = ring.verify(text)
        ticket.check_window(fields, now)
        out.append(time.ticks_diff(time.ticks_us(), t0))
    ticket_stats = results.stats(out)
    checks, decide = cpm_costs(payload, now, n)
    results.report([results.runtime_name(), cpm_stats, ticket_stats, checks, decide])


def read_text(path):
    with open(path) as f:
        return f.read()


main(sys.argv[1], read_text(sys.argv[2]), read_text(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
