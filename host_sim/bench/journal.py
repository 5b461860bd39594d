"""`python -m host_sim bench journal --cuts N --json`: power-cut trials of the journal inside MicroPython.

The trials and measurements run in the MicroPython unix port (hardware/journal_trials.py over the
NorFlash model of hardware/norflash.py); this module only starts that process and relays its JSON.
Targets (issue 5): 0 acknowledged_lost / duplicates / corrupt_accepted / mount_failures, no erase on
the tap path, <= 2 page programs per record, >= 8000 records per MB, efficiency >= 0.90, append +
durable commit median <= 2000 us.
"""

import json
import subprocess

from host_sim.paths import ROOT
from host_sim.tools.vboard import micropython_command

HEAP = "8m"  # the 1 MB chip of the measurements lives in the heap too (the journal itself needs far less)

_PROGRAM = """
import sys, json
sys.path[:0] = [%r]
from hardware import journal_trials
print("RESULT " + json.dumps(journal_trials.main(%d, %d)))
"""


def add_arguments(parser):
    parser.add_argument("--cuts", type=int, default=10000, help="randomised power-cut trials (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trials' random choices")


def run(args):
    program = _PROGRAM % (ROOT, args.cuts, args.seed)
    cmd = [micropython_command(), "-X", "heapsize=" + HEAP, "-c", program]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            keys = ("trials", "acknowledged_lost", "duplicates", "corrupt_accepted", "mount_failures",
                    "records_per_mb", "storage_efficiency", "append_us_median", "append_us_p99",
                    "programs_per_record", "erases_on_tap_path", "recovery_ms_full")
            out = {k: result[k] for k in keys}
            out["record_bytes"] = result["record_bytes"]
            return out
    raise SystemExit("journal bench failed inside MicroPython:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
