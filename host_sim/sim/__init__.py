"""`python -m host_sim sim SUB`: the simulator (scenarios, virtual time, fleet, record/replay).

Each subcommand is a module of host_sim/sim/ offering add_arguments(parser) and main(args) -> exit code.
"""

from host_sim import commands

# name -> (module, help)
SUBCOMMANDS = {
    "run": ("host_sim.sim.run", "a scenario file on virtual boards on a virtual clock; last line JSON"),
    "replay": ("host_sim.sim.replay", "replay a recorded link: terminal side to a collector, host side to a board"),
    "fleet": ("host_sim.sim.fleet", "N protocol-level terminals on one simulated clock against one real collector"),
}


def add_arguments(parser, argv=()):
    commands.add_table(parser, SUBCOMMANDS, "sim", argv)


def main(args):
    return commands.load(args.sim_module).main(args)
