"""`python -m host_sim flash --board NAME --port PORT [--romfs]`: build the board's .mpy set and deploy it.

Deploys build/<board>/ into the board's working directory over the REPL with mpremote, the same way
on a USB board and on a virtual board's console pty, then reads every file it wrote back on the board
(host_sim/device/board_files.py hashes()) and compares SHA-256 digests with the build: a copy cut short or
changed on the way is an error naming the files, and success says the files were verified.  Device keys are
a separate step: host_sim.tools.provision.

With --romfs the modules go into the board's ROM partition instead (`mpremote romfs deploy` of
build/<board>/romfs.img), where the firmware mounts them at /rom and runs their bytecode in place from
flash.  MicroPython searches the filesystem ('' in sys.path) before /rom, so the filesystem keeps only
boot.py and main.py: copies of the image's modules left there by an earlier plain flash are removed,
or they would shadow the image.  The firmware mounts the new image at its next reset (so --no-reset
leaves the board without its modules until then).  A board without a ROM partition (the virtual board:
the unix port has none) refuses the image before anything on its filesystem changes.
"""

import hashlib
import os
import subprocess
import sys

from host_sim import micropython
from host_sim.paths import BUILD
from host_sim.tools import build


def mpremote_exe():
    candidate = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return candidate if os.path.exists(candidate) else "mpremote"


def _parents(files):
    """Every directory above `files`, parents first."""
    dirs = []
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    return dirs


def board_call(program, function, *args):
    """mpremote command chain: run host_sim/device/<program>.py on the board, then call its `function`
    with `args` (literals) in one line."""
    call = "%s(%s)" % (function, ", ".join(repr(a) for a in args))
    return ["run", micropython.program_path(program), "exec", call]


def deploy_commands(build_dir, files):
    """mpremote command chain: create the directories, then copy every file (paths relative to build_dir)."""
    chain = board_call("board_files", "make_dirs", _parents(files))
    for rel in files:
        chain += ["+", "fs", "cp", os.path.join(build_dir, rel), ":" + rel]
    return chain


def verify_commands(files):
    """mpremote command chain printing the SHA-256 of each of `files` as the board reads it back."""
    return board_call("board_files", "hashes", list(files))


def check_hashes(build_dir, files, output):
    """Compare the "sha256 <path> <hex>" lines the board printed with the built files; a file missing or
    different raises RuntimeError naming it."""
    got = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "sha256":
            got[parts[1]] = parts[2]
    wrong = []
    for rel in files:
        with open(os.path.join(build_dir, rel), "rb") as f:
            if got.get(rel) != hashlib.sha256(f.read()).hexdigest():
                wrong.append(rel)
    if wrong:
        raise RuntimeError("read back from the board, %d of %d files differ from the build (SHA-256): %s"
                           % (len(wrong), len(files), ", ".join(wrong[:8]) + (" ..." if len(wrong) > 8 else "")))


def remove_commands(files):
    """mpremote command chain removing `files` and then their directories, where they exist."""
    dirs = sorted(_parents(files), key=lambda d: -d.count("/"))  # deepest first
    return board_call("board_files", "remove", list(files), dirs)


MPREMOTE_TIMEOUT_S = 900  # a whole deploy to a slow board; a locked REPL (no --key) never answers


def _mpremote(port, chain):
    try:
        proc = subprocess.run([mpremote_exe(), "connect", port] + chain, capture_output=True, text=True,
                              timeout=MPREMOTE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError("mpremote got no answer within %d s: a provisioned terminal's REPL is locked, give "
                           "--key TECHKEY" % MPREMOTE_TIMEOUT_S) from None
    if proc.returncode != 0:
        raise RuntimeError("mpremote failed (%d):\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def flash(board, port, reset=True, romfs=False, tech_key=None):
    """`tech_key`: a technician key file that opens a provisioned terminal's locked REPL (service mode)."""
    rows = build.build(board)
    if tech_key is not None:
        from host_sim.tools import console

        try:
            console.open_service(port, tech_key)
        except (console.ConsoleError, ValueError) as e:
            raise RuntimeError("service mode: %s" % e) from None
    build_dir = os.path.join(BUILD, board)
    files = [rel for rel, _, _ in rows if build.deployed(rel)]
    if romfs:
        modules = [rel for rel in files if build.in_image(rel)]
        # First the image: a board that refuses it (no ROM partition) keeps its filesystem as it was.
        try:
            _mpremote(port, ["romfs", "deploy", os.path.join(build_dir, build.ROMFS_IMAGE)])
        except RuntimeError as e:
            raise RuntimeError("%s\nthe board's filesystem is unchanged; --romfs needs a firmware with a ROM "
                               "partition (hardware/README.md, \"Code in flash\"); without --romfs the "
                               "modules go to the filesystem" % e) from None
        files = [rel for rel in files if rel not in modules]
        chain = remove_commands(modules) + ["+"] + deploy_commands(build_dir, files)
    else:
        chain = deploy_commands(build_dir, files)
    chain += ["+"] + verify_commands(files)  # read back before the reset, while the REPL is open
    if reset and board != "virtual":  # the unix port has no machine.reset(); its launcher reboots it
        chain += ["+", "reset"]
    check_hashes(build_dir, files, _mpremote(port, chain))
    return rows, files


def main(args):
    try:
        rows, files = flash(args.board, args.port, reset=not args.no_reset, romfs=args.romfs, tech_key=args.key)
    except (build.BuildError, RuntimeError) as e:
        print("flash failed: %s" % e, file=sys.stderr)
        return 1
    print(build.size_table(args.board, rows))
    if args.romfs:
        print("deployed build/%s/%s to the ROM partition" % (args.board, build.ROMFS_IMAGE))
    print("deployed %d files to %s" % (len(files), args.port))
    print("verified: the SHA-256 of each of the %d files read back from the board matches the build" % len(files))
    return 0


def add_arguments(parser):
    parser.add_argument("--board", required=True, help="board module name (%s)" % ", ".join(build.BOARDS))
    parser.add_argument("--port", required=True, help="the board's REPL port, e.g. /dev/ttyUSB0 or a vboard console")
    parser.add_argument("--no-reset", action="store_true", help="do not reset the board after copying")
    parser.add_argument("--key", metavar="TECHKEY",
                        help="technician key (`bundle techkey`): opens service mode on a provisioned terminal, whose "
                             "REPL is locked")
    parser.add_argument("--romfs", action="store_true",
                        help="modules into the board's ROM partition (mpremote romfs deploy), only boot.py and "
                             "main.py to its filesystem; needs a firmware with a ROMFS partition")
