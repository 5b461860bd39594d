"""`python -m host_sim bench journal --cuts N --json`: power-cut trials of the journal inside MicroPython.

The trials and measurements run in the MicroPython unix port (host_sim/device/journal_trials.py over the
NorFlash model of host_sim/device/norflash.py); this module only starts that process and relays its JSON.
Targets (issue 5): 0 acknowledged_lost / duplicates / corrupt_accepted / mount_failures, no erase on
the tap path, <= 2 page programs per record, >= 8000 records per MB, efficiency >= 0.90, append +
durable commit median <= 2000 us.
"""

from host_sim import micropython

HEAP = "8m"  # the 1 MB chip of the measurements lives in the heap too (the journal itself needs far less)


def add_arguments(parser):
    parser.add_argument("--cuts", type=int, default=10000, help="randomised power-cut trials (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trials' random choices")


def run(args):
    result = micropython.run_program("journal_trials", [args.cuts, args.seed], heap=HEAP, timeout=None)
    keys = ("trials", "acknowledged_lost", "duplicates", "corrupt_accepted", "mount_failures",
            "records_per_mb", "storage_efficiency", "append_us_median", "append_us_p99",
            "programs_per_record", "erases_on_tap_path", "recovery_ms_full")
    out = {k: result[k] for k in keys}
    out["record_bytes"] = result["record_bytes"]
    return out
