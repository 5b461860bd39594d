"""`python -m host_sim bench NAME --json`: measurements, printed as JSON for scripts and issue notes.

Benchmarks are commands, never timed assertions in tests.  Each benchmark is a module
host_sim/bench_<name>.py offering add_arguments(parser) and run(args) -> a JSON-able result.
"""

import importlib
import json

BENCHMARKS = {
    # name -> module; issues add theirs here
    "credentials": "host_sim.bench_credentials",
    "emv": "host_sim.bench_emv",
    "journal": "host_sim.bench_journal",
    "modem": "host_sim.bench_modem",
    "link": "host_sim.bench_link",
    "collector": "host_sim.bench_collector",
    "frames": "host_sim.bench_frames",
    "drain": "host_sim.bench_drain",
    "heap": "host_sim.bench_heap",
    "bundle": "host_sim.bench_bundle",
}


def add_arguments(parser):
    sub = parser.add_subparsers(dest="bench", required=True)
    for name, module in BENCHMARKS.items():
        sp = sub.add_parser(name)
        sp.add_argument("--json", action="store_true", help="print only the JSON result")
        importlib.import_module(module).add_arguments(sp)


def main(args):
    result = importlib.import_module(BENCHMARKS[args.bench]).run(args)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
