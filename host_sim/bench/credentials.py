"""`python -m host_sim bench credentials --json`: what reading a credential costs on MicroPython.

Spawns the MicroPython unix port (the virtual board's VM, same heap) running the real protocol/ code
and times, per iteration, with time.ticks_us():
- cpm_decode: cpm.decode + account_number + deferred (decode and validate a wallet payment code);
- ticket_verify: Keyring.verify (base64url, layout, RSA-2048 PKCS#1 v1.5 SHA-256 with pow()) plus the
  validity window check.
"emv_read" comes from host_sim.bench.emv.run() when that module exists (the NFC work adds it), else null.
Targets: cpm_decode <= 1000 us median, ticket_verify <= 2000 us median.
"""

import importlib
import inspect
import os
import time

from host_sim.bench import mp as bench_mp
from host_sim.tools import tickets
from protocol import cpm

_SCRIPT = """
import sys, time, json
from protocol import cpm, ticket
payload, keyline, text, now, n = %r
out = []
for _ in range(n):
    t0 = time.ticks_us()
    objects = cpm.decode(payload)
    cpm.account_number(objects)
    cpm.deferred(objects)
    out.append(time.ticks_diff(time.ticks_us(), t0))
cpm_stats = stats(out)
ring = ticket.Keyring()
ring.load_line(keyline)
out = []
for _ in range(n):
    t0 = time.ticks_us()
    fields = ring.verify(text)
    ticket.check_window(fields, now)
    out.append(time.ticks_diff(time.ticks_us(), t0))
print("RESULT " + json.dumps([runtime_name(), cpm_stats, stats(out)]))
"""


def _emv_read(args):
    try:
        module = importlib.import_module("host_sim.bench.emv")
    except ImportError:
        return None
    run = module.run
    return run(args) if inspect.signature(run).parameters else run()


def run(args):
    n = args.iterations
    payload = cpm.encode("6231230000001234567", atc=300, cryptogram=os.urandom(8), unpredictable=os.urandom(4))
    key = tickets.generate_key()
    now = int(time.time())
    text = tickets.issue(key, 1, 1, os.urandom(8), product=7, valid_from=now - 60, valid_to=now + 3600,
                         entries=2, holder=b"bench")
    script = _SCRIPT % ((payload, tickets.keyring_line(key, 1, 1), text, now, n),)
    runtime, cpm_stats, ticket_stats = bench_mp.run(script, args.heap)
    return {"runtime": runtime, "cpm_decode": cpm_stats, "ticket_verify": ticket_stats,
            "emv_read": _emv_read(args), "targets_us": {"cpm_decode": 1000, "ticket_verify": 2000}}


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
