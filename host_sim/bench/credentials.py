"""`python -m host_sim bench credentials --json`: what reading a credential costs on MicroPython.

Runs host_sim/device/bench_credentials.py in the MicroPython unix port (the virtual board's VM, same
heap) over the real protocol/ code, which times, per iteration, with time.ticks_us():
- cpm_decode: cpm.decode + account_number + deferred (decode and validate a wallet payment code);
- cpm_checks: cpm.decode + payment_data + check + account_number (what a terminal verifies offline:
  structure, Luhn, expiry, cryptogram present, ARQC, ATC);
- cpm_decide: a whole Decider.decide of that code (checks, token, card data sealed, record extensions);
- ticket_verify: Keyring.verify (base64url, layout, RSA-2048 PKCS#1 v1.5 SHA-256 with pow()) plus the
  validity window check.
"emv_read" comes from host_sim.bench.emv.run() when that module exists (the NFC work adds it), else null.
Targets: cpm_decode <= 1000 us median, ticket_verify <= 2000 us median.
"""

import importlib
import inspect
import os
import tempfile
import time

from host_sim import micropython
from host_sim.emulators import wallet
from host_sim.tools import tickets


def _emv_read(args):
    try:
        module = importlib.import_module("host_sim.bench.emv")
    except ImportError:
        return None
    run = module.run
    return run(args) if inspect.signature(run).parameters else run()


def run(args):
    n = args.iterations
    payload = wallet.code("unionpay-hce", atc=300)
    key = tickets.generate_key()
    now = int(time.time())
    text = tickets.issue(key, 1, 1, os.urandom(8), product=7, valid_from=now - 60, valid_to=now + 3600,
                         entries=2, holder=b"bench")
    with tempfile.TemporaryDirectory() as tmp:
        keyring, ticket = os.path.join(tmp, "keyring"), os.path.join(tmp, "ticket")
        for path, content in ((keyring, tickets.keyring_line(key, 1, 1)), (ticket, text)):
            with open(path, "w") as f:
                f.write(content)
        runtime, cpm_stats, ticket_stats, checks, decide = micropython.run_program(
            "bench_credentials", [payload, keyring, ticket, now, n], heap=args.heap)
    return {"runtime": runtime, "cpm_decode": cpm_stats, "ticket_verify": ticket_stats,
            "cpm_checks": checks, "cpm_decide": decide, "emv_read": _emv_read(args),
            "targets_us": {"cpm_decode": 1000, "ticket_verify": 2000}}


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
