"""Command tables: `python -m host_sim COMMAND`, `bench NAME`, `emulate PERIPHERAL`.

A table maps a name to (module, help).  Building the parser imports only the module of the command
being run, so `--help` costs no imports and a missing optional dependency breaks only the commands
that need it.  A command module offers add_arguments(parser) and main(args) -> exit code; a module
with a table of its own (SUBCOMMANDS) is given the rest of the command line too."""

import importlib
import sys

from host_sim.arguments import OneLineParser


class MissingDependency(Exception):
    """A command's module could not be imported: one line for the user, not a traceback."""


def load(module):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name and e.name.split(".")[0] in ("host_sim", "protocol", "firmware", "hardware"):
            raise
        raise MissingDependency("needs the Python module %r, which is not installed (pip install -r "
                                "requirements.txt -r requirements-qr.txt)" % (e.name or str(e))) from None


def first_word(argv):
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return arg, list(argv[i + 1:])
    return None, []


def add_table(parser, table, dest, argv):
    """Add the table's commands to `parser`; only the one named first in `argv` gets its arguments.
    Returns the sub-parsers by name."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper())
    chosen, rest = first_word(argv)
    parsers = {}
    for name, (module, help_text) in table.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(**{dest + "_module": module})
        parsers[name] = sp
        if name == chosen:
            mod = load(module)
            if hasattr(mod, "SUBCOMMANDS"):
                mod.add_arguments(sp, rest)
            else:
                mod.add_arguments(sp)
    return parsers


def run(prog, description, table, argv=None):
    """Parse `argv` against `table` and run the chosen command; a missing dependency is one line, exit 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser(prog=prog, description=description)
    try:
        add_table(parser, table, "command", argv)
        args = parser.parse_args(argv)
        return load(args.command_module).main(args)
    except MissingDependency as e:
        chosen, _ = first_word(argv)
        print("%s %s: %s" % (prog, chosen, e), file=sys.stderr)
        return 2
