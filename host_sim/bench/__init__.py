"""`python -m host_sim bench NAME --json`: measurements, printed as JSON for scripts and issue notes.

Benchmarks are commands, never timed assertions in tests.  Each benchmark is a module
host_sim/bench/<name>.py offering add_arguments(parser) and run(args) -> a JSON-able result.
"""

import json
import sys

from host_sim import commands, micropython

# name -> (module, help); issues add theirs here
SUBCOMMANDS = {
    "credentials": ("host_sim.bench.credentials", "CPM decode and ticket verify timed inside MicroPython"),
    "emv": ("host_sim.bench.emv", "one EMV contactless read through the PN532 driver in MicroPython"),
    "journal": ("host_sim.bench.journal", "power-cut trials of the journal inside MicroPython, flash costs"),
    "modem": ("host_sim.bench.modem", "modem transport throughput and latency per dialect"),
    "link": ("host_sim.bench.link", "link protocol goodput vs stop-and-wait over the emulated line"),
    "collector": ("host_sim.bench.collector", "collector ingest: records/s into the store, group commit"),
    "collector-load": ("host_sim.bench.collector_load", "collector under misuse: idle, slowloris, non-reading, flood"),
    "frames": ("host_sim.bench.frames", "what one uplink frame costs the terminal on MicroPython"),
    "uplink-memory": ("host_sim.bench.uplink_memory", "bytes allocated per uplink frame, MicroPython"),
    "drain": ("host_sim.bench.drain", "a virtual board's journal drained over the paced uplink"),
    "heap": ("host_sim.bench.heap", "heap the terminal's code costs in MicroPython (.mpy vs ROMFS)"),
    "bundle": ("host_sim.bench.bundle", "fleet bundle check and activation inside MicroPython"),
    "online": ("host_sim.bench.online", "tap-to-decision of an online payment code, serial and modem uplink"),
    "seal": ("host_sim.bench.seal", "sealing a record's card data and wrapping an epoch key, MicroPython and CPython"),
    "ecc": ("host_sim.bench.ecc", "SM2 / ECDSA P-256 verify, SM3 and RSA-2048 verify inside MicroPython"),
    "ridecode": ("host_sim.bench.ridecode", "one ride code's whole check (decode, chain, freshness) in MicroPython"),
    "denylist": ("host_sim.bench.denylist", "deny list at county scale on littlefs in MicroPython"),
    "tapstate": ("host_sim.bench.tapstate", "per-credential state on littlefs in MicroPython: get + put per tap"),
    "console": ("host_sim.bench.console", "technician console on a virtual board: login, status and log round trips"),
    "tap": ("host_sim.bench.tap", "line -> decision -> journal -> feedback per credential kind on a virtual board"),
    "capture": ("host_sim.bench.capture", "link capture: recording overhead, decode and replay rates"),
    "promotion": ("host_sim.bench.promotion", "a promotion's draw and its budget file, MicroPython"),
}


def add_arguments(parser, argv=()):
    for sp in commands.add_table(parser, SUBCOMMANDS, "bench", argv).values():
        sp.add_argument("--json", action="store_true", help="print only the JSON result")


def main(args):
    try:
        result = commands.load(args.bench_module).run(args)
    except micropython.ProgramFailed as e:
        print("bench %s: %s" % (args.bench, e), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
