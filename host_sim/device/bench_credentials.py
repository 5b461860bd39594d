"""`bench credentials` inside MicroPython: CPM decode and ticket verify, timed per iteration.

argv: payload, the file holding the keyring line, the file holding the ticket, now (s), iterations.
(The unix port refuses an argument longer than 255 bytes, so the long inputs come in files.)"""

import sys
import time

from host_sim.device import results
from protocol import cpm, ticket


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
    results.report([results.runtime_name(), cpm_stats, results.stats(out)])


def read_text(path):
    with open(path) as f:
        return f.read()


main(sys.argv[1], read_text(sys.argv[2]), read_text(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
