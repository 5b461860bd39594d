"""`python -m host_sim bench heap --json`: heap the terminal's code costs on MicroPython, by where it lives.

The virtual board's build is imported whole (every module build/<board>/romfs.img carries) by the
MicroPython unix port (host_sim/device/bench_heap.py), each way in a fresh process, with
gc.mem_alloc() read before and after:
- mpy: the .mpy files on an ordinary filesystem.  The VM copies every module's bytecode and constants
  into the heap; this is the virtual board's situation and a device's without ROMFS.
- romfs: the image read into a buffer, mounted with vfs.VfsRom at /rom and put first on sys.path.  The
  VM runs the bytecode in place from the image.  On unix the buffer itself is in the heap, so both the
  total and the total less the buffer are reported: the latter approximates a device, where the image
  is memory-mapped flash and costs no RAM.
Each run also takes one transaction record through the imported protocol modules (record.encode ->
frame.encode -> FrameReader -> record.decode), proving the code it measured works.
"""

import os
import tempfile

from host_sim import micropython
from host_sim.tools import build

BOARD = "virtual"  # the only board module the unix port can import
MOUNT = "/rom"

def module_names(rels):
    """Import names of the image's files: firmware/drivers/modem.mpy -> firmware.drivers.modem."""
    names = []
    for rel in rels:
        name = rel[: -len(".mpy")].replace("/", ".")
        names.append(name[: -len(".__init__")] if name.endswith(".__init__") else name)
    return names


def measure(mode, where, modules, heap="1m"):
    """Import `modules` in a fresh MicroPython from directory `where` (mode "mpy") or from the ROMFS
    image file `where` (mode "romfs"); the RESULT dict of host_sim/device/bench_heap.py."""
    return micropython.run_program("bench_heap", [mode, where, MOUNT] + list(modules), heap=heap, timeout=120)


def run(args):
    with tempfile.TemporaryDirectory() as tmp:
        rows = build.build(BOARD, tmp)
        modules = module_names([rel for rel, _, _ in rows if build.in_image(rel)])
        image = os.path.join(tmp, build.ROMFS_IMAGE)
        mpy = measure("mpy", tmp, modules, args.heap)
        romfs = measure("romfs", image, modules, args.heap)
        image_bytes = os.path.getsize(image)
    return {
        "runtime": romfs["runtime"],
        "board": BOARD,
        "modules": len(modules),
        "mpy_import_bytes": mpy["used"],
        "romfs_import_bytes": romfs["used"],
        "romfs_image_bytes": image_bytes,
        "romfs_image_heap_bytes": romfs["image"],
        "romfs_import_bytes_excluding_image": romfs["used"] - romfs["image"],
    }


def add_arguments(parser):
    parser.add_argument("--heap", default="1m", help="MicroPython heap for each import run")
