"""`python -m host_sim sim SUB`: the simulator (scenarios, virtual time, fleet, record/replay)."""

from host_sim import commands

# name -> (module, help)
SUBCOMMANDS = {
    "run": ("host_sim.sim.run", "a scenario file on virtual boards on a virtual clock; last line JSON"),
}


def add_arguments(parser, argv=()):
    commands.add_table(parser, SUBCOMMANDS, "sim", argv)


def main(args):
    return commands.load(args.sim_module).main(args)
