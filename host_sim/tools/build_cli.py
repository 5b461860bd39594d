"""`python -m host_sim build [--board NAME|all]`: compile and print the size table and the images; with
all, also check the host_sim/device/ programs with mpy-cross."""

import sys

from host_sim.tools import build


def add_arguments(parser):
    parser.add_argument("--board", default="all", help="board name or 'all' (%s)" % ", ".join(build.BOARDS))
    parser.add_argument("--force", action="store_true", help="recompile even unchanged files")


def main(args):
    boards = build.BOARDS if args.board == "all" else (args.board,)
    for board in boards:
        try:
            rows = build.build(board, force=args.force)
        except build.BuildError as e:
            print("build failed: %s" % e, file=sys.stderr)
            return 1
        print(build.size_table(board, rows))
        print(build.images_table(board))
        print()
    if args.board == "all":
        try:
            checked = build.check_device_programs()
        except build.BuildError as e:
            print("build failed: %s" % e, file=sys.stderr)
            return 1
        print("%s/: %d programs compiled by mpy-cross (a check; not deployed)" % (build.DEVICE_PROGRAMS, len(checked)))
    return 0
