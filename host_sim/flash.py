"""`python -m host_sim flash --board NAME --port PORT`: build the board's .mpy set and deploy it.

Deploys build/<board>/ into the board's working directory over the REPL with mpremote, the same way
on a USB board and on a virtual board's console pty.  Device keys are a separate step: host_sim.provision.
"""

import os
import subprocess
import sys

from host_sim import build


def mpremote_exe():
    candidate = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return candidate if os.path.exists(candidate) else "mpremote"


def deploy_commands(build_dir):
    """mpremote command chain: create the directories, then copy every file."""
    dirs, files = [], []
    for dirpath, dirnames, filenames in os.walk(build_dir):
        dirnames.sort()
        rel = os.path.relpath(dirpath, build_dir)
        if rel != ".":
            dirs.append(rel)
        for name in sorted(filenames):
            files.append(os.path.normpath(os.path.join(rel, name)))
    mkdirs = "import os\nfor d in %r:\n    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n" % dirs
    chain = ["exec", mkdirs]
    for rel in files:
        chain += ["+", "fs", "cp", os.path.join(build_dir, rel), ":" + rel]
    return chain, files


def flash(board, port, reset=True):
    rows = build.build(board)
    build_dir = os.path.join(build.ROOT, "build", board)
    chain, files = deploy_commands(build_dir)
    if reset and board != "virtual":  # the unix port has no machine.reset(); its launcher reboots it
        chain += ["+", "reset"]
    proc = subprocess.run([mpremote_exe(), "connect", port] + chain, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("mpremote failed (%d):\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
    return rows, files


def main(args):
    try:
        rows, files = flash(args.board, args.port, reset=not args.no_reset)
    except (build.BuildError, RuntimeError) as e:
        print("flash failed: %s" % e, file=sys.stderr)
        return 1
    print(build.size_table(args.board, rows))
    print("deployed %d files to %s" % (len(files), args.port))
    return 0


def add_arguments(parser):
    parser.add_argument("--board", required=True, help="board module name (%s)" % ", ".join(build.BOARDS))
    parser.add_argument("--port", required=True, help="the board's REPL port, e.g. /dev/ttyUSB0 or a vboard console")
    parser.add_argument("--no-reset", action="store_true", help="do not reset the board after copying")
