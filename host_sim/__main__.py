"""`python -m host_sim COMMAND ...`: the host-side tools, dispatched from one table."""

import argparse
import importlib
import sys

# command -> (module, help).  Each module offers add_arguments(parser) and main(args) -> exit code.
COMMANDS = {
    "demo": ("host_sim.demo", "virtual terminal, ~20 taps, a power cut, upload; last line JSON"),
    "vboard": ("host_sim.vboard", "start a virtual board; first line JSON with its ports"),
    "collector": ("host_sim.collector", "the backend: store uploaded records in SQLite"),
    "build": ("host_sim.build_cli", "compile device code with mpy-cross into build/<board>/"),
    "emulate": ("host_sim.emulate", "run one peripheral emulator on a pty"),
    "flash": ("host_sim.flash", "build a board's .mpy files and deploy them with mpremote"),
    "bench": ("host_sim.bench", "benchmarks with JSON output"),
    "provision": ("host_sim.provision", "give a terminal its device key and register it with the collector"),
    "acquirer": ("host_sim.acquirer", "authorise deferred transactions; declines join the deny list"),
    "report": ("host_sim.report", "settlement and reconciliation per merchant, terminal and day (CSV, HTML)"),
    "qr": ("host_sim.qr", "decode QR payloads (EMV CPM/MPM, tickets) as JSON; make test payloads and PNGs"),
    "typecheck": ("host_sim.typecheck", "pyright over device code against the MicroPython stubs"),
    "bundle": ("host_sim.bundle", "the config authority: keygen, make and show RSA-signed fleet bundles"),
}


def parser():
    p = argparse.ArgumentParser(prog="python -m host_sim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        sp.set_defaults(module=module)
        importlib.import_module(module).add_arguments(sp)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    return importlib.import_module(args.module).main(args)


if __name__ == "__main__":
    sys.exit(main())
