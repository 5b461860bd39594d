"""`python -m host_sim bench heap --json`: heap the terminal's code costs on MicroPython, by where it lives.

The virtual board's build is imported whole (every module build/<board>/romfs.img carries) by the
MicroPython unix port, each way in a fresh process, with gc.mem_alloc() read before and after:
- mpy: the .mpy files on an ordinary filesystem.  The VM copies every module's bytecode and constants
  into the heap; this is the virtual board's situation and a device's without ROMFS.
- romfs: the image read into a buffer, mounted with vfs.VfsRom at /rom and put first on sys.path.  The
  VM runs the bytecode in place from the image.  On unix the buffer itself is in the heap, so both the
  total and the total less the buffer are reported: the latter approximates a device, where the image
  is memory-mapped flash and costs no RAM.
Each run also takes one transaction record through the imported protocol modules (record.encode ->
frame.encode -> FrameReader -> record.decode), proving the code it measured works.
"""

import json
import os
import subprocess
import tempfile

from host_sim.tools import build, vboard

BOARD = "virtual"  # the only board module the unix port can import
MOUNT = "/rom"

_SCRIPT = """
import gc, json, sys, vfs
mode, where, modules = %r
gc.collect()
base = gc.mem_alloc()
image = 0
if mode == "romfs":
    with open(where, "rb") as f:
        buf = f.read()
    gc.collect()
    image = gc.mem_alloc() - base
    vfs.mount(vfs.VfsRom(buf), %r)
    where = %r
sys.path[:] = [where, ".frozen"]
for name in modules:
    __import__(name)
gc.collect()
used = gc.mem_alloc() - base
files = [getattr(sys.modules[name], "__file__", None) for name in modules]
from protocol import frame, record
rec = record.encode(b"T0000001", 42, 1700000000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 3,
                    b"0123456789abcdef")
wire = frame.encode(rec)
got = frame.FrameReader().feed(wire)
back = record.decode(got[0]) if len(got) == 1 else {}
v = sys.implementation.version
runtime = "micropython %%d.%%d.%%d %%s" %% (v[0], v[1], v[2], sys.platform)
print("RESULT " + json.dumps({"runtime": runtime, "used": used, "image": image, "files": files,
                              "wire": wire.hex(), "seq": back.get("seq"), "amount": back.get("amount")}))
"""


def module_names(rels):
    """Import names of the image's files: firmware/drivers/modem.mpy -> firmware.drivers.modem."""
    names = []
    for rel in rels:
        name = rel[: -len(".mpy")].replace("/", ".")
        names.append(name[: -len(".__init__")] if name.endswith(".__init__") else name)
    return names


def measure(mode, where, modules, heap="1m"):
    """Import `modules` in a fresh MicroPython from directory `where` (mode "mpy") or from the ROMFS
    image file `where` (mode "romfs"); the script's RESULT dict."""
    script = _SCRIPT % ((mode, where, modules), MOUNT, MOUNT)
    proc = subprocess.run([vboard.micropython_command(), "-X", "heapsize=" + heap, "-c", script],
                          capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("micropython (%s import) failed:\n%s%s" % (mode, proc.stdout, proc.stderr))
    return json.loads(lines[-1][len("RESULT "):])


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
