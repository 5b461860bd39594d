"""Type-check the device code with pyright against each target's MicroPython stubs.

    python -m host_sim.tools.typecheck                  install stubs if needed, check every target
    python -m host_sim.tools.typecheck --target rp2     one target (repeatable)
    python -m host_sim.tools.typecheck --install-only   only fetch the stubs (tox's commands_pre)

Each target is one pyright project, `pyrightconfig.<target>.json` in the repository root:

    esp32   firmware/ + protocol/ + hardware/boards/esp32s3_gate.py   micropython-esp32-stubs
    rp2     firmware/ + protocol/ + hardware/boards/rp2040_bus.py     micropython-rp2-stubs
    unix    hardware/boards/virtual.py + host_sim/device/              micropython-unix-stubs

A board's config also includes the shared modules beside it that the board imports
(machine_board.py, ssd1306_text.py), which pyright finds next to the importing file.

The configs name directories; whatever .py files firmware/ and protocol/ hold when pyright runs is
checked.  The esp32 and rp2 stubs both define `machine` (differently), so each target gets its own
directory under .typings/ (git-ignored), made by this script:

    .typings/<target>/stubs/              pip --target of the port stubs + micropython-stdlib-stubs.
                                          It is pyright's stubPath (machine, esp32, rp2, ...) and its
                                          typeshedPath: the stdlib stubs ship a `stdlib/` folder that
                                          replaces CPython's typeshed, so `os.path` or `subprocess`
                                          are errors, as they would be on the device.
    .typings/<target>/lib/site-packages/  empty.  The configs set venvPath/venv to .typings/<target>,
                                          so pyright takes this as the whole Python environment and
                                          never falls back to the host interpreter's site-packages
                                          (where CPython-only packages and mixed stubs live).
    .typings/<target>/board/board.py      `from hardware.boards.<board> import *` on the configs'
                                          extraPaths.  Firmware does `import board`; on a device the
                                          flash tool installs the board's module as board.mpy, so here
                                          `board` re-exports the board under check.  The star import
                                          passes public names only: firmware reaching for a board's
                                          private `_name` is an error, as it should be.

Exit status: 0 when every selected target is clean, 1 when pyright reported errors, 2 when the
setup failed (stubs could not be installed, pyright could not run).
"""

import argparse
import os
import shutil
import subprocess
import sys

from host_sim.paths import ROOT

TYPINGS = os.path.join(ROOT, ".typings")

STUBS_VERSION = "1.29.0.post1"
STDLIB_STUBS = "micropython-stdlib-stubs==1.29.0.post2"

# target -> (board module, pip requirements of its stubs)
TARGETS = {
    "esp32": ("esp32s3_gate", ("micropython-esp32-stubs==" + STUBS_VERSION, STDLIB_STUBS)),
    "rp2": ("rp2040_bus", ("micropython-rp2-stubs==" + STUBS_VERSION, STDLIB_STUBS)),
    "unix": ("virtual", ("micropython-unix-stubs==" + STUBS_VERSION, STDLIB_STUBS)),
}


class SetupError(Exception):
    pass


def config_path(target):
    return os.path.join(ROOT, "pyrightconfig.%s.json" % target)


def _stamp_path(target):
    return os.path.join(TYPINGS, target, "stubs.installed")


def stubs_installed(target):
    try:
        with open(_stamp_path(target)) as f:
            return f.read().split() == list(TARGETS[target][1])
    except OSError:
        return False


def install_stubs(target, quiet=True):
    """pip-install the target's pinned stubs into .typings/<target>/stubs (replacing older ones)."""
    base = os.path.join(TYPINGS, target)
    dest = os.path.join(base, "stubs")
    tmp = dest + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(base, exist_ok=True)
    # --no-deps: the stdlib stubs are pinned explicitly, so every machine resolves the same files.
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
           "--no-deps", "--target", tmp] + list(TARGETS[target][1])
    if quiet:
        cmd.insert(4, "--quiet")
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SetupError("pip could not install the %s stubs:\n%s" % (target, (proc.stderr or "").strip()))
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    with open(_stamp_path(target), "w") as f:
        f.write("\n".join(TARGETS[target][1]) + "\n")


def prepare(target):
    """The generated parts of .typings/<target>/ besides the stubs: empty environment, board shim."""
    base = os.path.join(TYPINGS, target)
    os.makedirs(os.path.join(base, "lib", "site-packages"), exist_ok=True)
    shim_dir = os.path.join(base, "board")
    os.makedirs(shim_dir, exist_ok=True)
    text = ('"""Generated by host_sim/tools/typecheck.py: `import board` is the %s board here."""\n'
            "from hardware.boards.%s import *  # noqa: F401,F403\n" % (target, TARGETS[target][0]))
    shim = os.path.join(shim_dir, "board.py")
    try:
        with open(shim) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(shim, "w") as f:
        f.write(text)


def run_pyright(target, extra=()):
    """Run pyright on one target; returns its exit code (0 clean, 1 errors, >= 2 pyright failed)."""
    cmd = [sys.executable, "-m", "pyright", "-p", config_path(target)] + list(extra)
    return subprocess.run(cmd, cwd=ROOT).returncode


def add_arguments(p):
    p.add_argument("--target", action="append", choices=sorted(TARGETS),
                   help="check only this target (repeatable; default: all)")
    p.add_argument("--install-only", action="store_true", help="install the stubs, do not check")
    p.add_argument("--no-install", action="store_true",
                   help="never run pip: fail if a target's stubs are missing")
    p.add_argument("--reinstall", action="store_true", help="install the stubs again even if present")
    p.add_argument("--verbose", action="store_true", help="show pip's output and pyright's search paths")


def main(args):
    targets = args.target or list(TARGETS)
    try:
        for target in targets:
            if not os.path.exists(config_path(target)):
                raise SetupError("missing %s" % os.path.relpath(config_path(target), ROOT))
            if args.reinstall or not stubs_installed(target):
                if args.no_install:
                    raise SetupError("stubs for %s are not installed: run python -m host_sim.tools.typecheck "
                                     "--install-only" % target)
                print("typecheck: installing %s" % " ".join(TARGETS[target][1]), flush=True)
                install_stubs(target, quiet=not args.verbose)
            prepare(target)
    except (SetupError, OSError) as e:
        print("typecheck: %s" % e, file=sys.stderr)
        return 2
    if args.install_only:
        return 0
    results = {}
    for target in targets:
        print("typecheck: %s (board %s) -- pyright -p %s" % (target, TARGETS[target][0],
              os.path.basename(config_path(target))), flush=True)
        results[target] = run_pyright(target, ["--verbose"] if args.verbose else [])
    summary = ", ".join("%s %s" % (t, "ok" if rc == 0 else ("errors" if rc == 1 else "failed (exit %d)" % rc))
                        for t, rc in results.items())
    print("typecheck: %s" % summary)
    if any(rc >= 2 for rc in results.values()):
        return 2
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m host_sim.tools.typecheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
