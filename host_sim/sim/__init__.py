"""`python -m host_sim sim SUB`: the simulator (scenarios, virtual time, fleet, record/replay)."""

from host_sim import commands

SUBCOMMANDS = {
    "replay": ("host_sim.sim.replay", "replay a recorded link: terminal side to a collector, host side to a board"),
}


def add_arguments(parser, argv=()):
    commands.add_table(parser, SUBCOMMANDS, "sim", argv)


def main(args):
    return commands.load(args.sim_module).main(args)
