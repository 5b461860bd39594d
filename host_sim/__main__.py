"""`python -m host_sim COMMAND ...` (installed: `zhifu COMMAND ...`): the host-side tools, one table."""

import os
import sys

from host_sim import commands

# command -> (module, help).  Each module offers add_arguments(parser) and main(args) -> exit code.
COMMANDS = {
    "demo": ("host_sim.demo", "virtual terminal, ~20 taps, a power cut, upload; last line JSON"),
    "vboard": ("host_sim.tools.vboard", "start a virtual board; first line JSON with its ports"),
    "collector": ("host_sim.backend.collector", "the backend: store uploaded records in SQLite or PostgreSQL"),
    "db": ("host_sim.backend.db", "the collector's database: migrate; a private PostgreSQL server: start, stop"),
    "build": ("host_sim.tools.build_cli", "compile device code with mpy-cross into build/<board>/"),
    "emulate": ("host_sim.emulators.cli", "run one peripheral emulator on a pty"),
    "flash": ("host_sim.tools.flash", "build a board's .mpy files and deploy them with mpremote"),
    "bench": ("host_sim.bench", "benchmarks with JSON output"),
    "provision": ("host_sim.tools.provision", "give a terminal its device key and register it with the collector"),
    "acquirer": ("host_sim.backend.acquirer", "authorise deferred transactions; declines join the deny list"),
    "acquirer-host": ("host_sim.backend.acquirer_host", "acquirer and issuer simulation behind ISO 8583 over TCP"),
    "report": ("host_sim.backend.report", "settlement and reconciliation per merchant, terminal and day (CSV, HTML)"),
    "case": ("host_sim.backend.cases", "complaints: open a case on a transaction, show it, resolve it"),
    "programme": ("host_sim.backend.programme", "programme report per period: users, transactions, shares, plots"),
    "monitor": ("host_sim.backend.monitor", "terminal health and velocity anomalies per token: alerts, JSON feed"),
    "qr": ("host_sim.tools.qr", "decode QR payloads (EMV CPM/MPM, tickets) as JSON; make test payloads and PNGs"),
    "typecheck": ("host_sim.tools.typecheck", "pyright over device code against the MicroPython stubs"),
    "seal": ("host_sim.tools.seal", "the collector's seal key pair: terminals seal card data to its public key"),
    "bundle": ("host_sim.tools.bundle", "the config authority: keygen, make and show RSA-signed fleet bundles"),
    "tokens": ("host_sim.backend.tokens", "the fleet token key: show versions and the deny list, rotate"),
    "console": ("host_sim.tools.console", "the technician console: log in with a technician key, run service commands"),
    "sim": ("host_sim.sim", "the simulator: scenarios on a virtual clock, a county fleet, recorded links replayed"),
    "fuzz": ("host_sim.fuzz.cli", "fuzz every parser of outside input; findings saved, exit 1; JSON counts"),
}


def main(argv=None):
    prog = "zhifu" if os.path.basename(sys.argv[0]) == "zhifu" else "python -m host_sim"
    return commands.run(prog, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
