"""`python -m host_sim emulate PERIPHERAL ...`: one peripheral emulator on a pty."""

import importlib

EMULATORS = {
    "scanner": "host_sim.emulators.scanner",
    "pn532": "host_sim.emulators.pn532",
    "modem": "host_sim.emulators.modem",
}


def add_arguments(parser):
    sub = parser.add_subparsers(dest="peripheral", required=True)
    for name, module in EMULATORS.items():
        sp = sub.add_parser(name)
        importlib.import_module(module).add_arguments(sp)


def main(args):
    return importlib.import_module(EMULATORS[args.peripheral]).main(args)
