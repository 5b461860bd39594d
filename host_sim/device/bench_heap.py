"""`bench heap` inside MicroPython: the heap that importing the terminal's modules costs.

argv: mode ("mpy": import from the directory WHERE, "romfs": mount the image file WHERE at MOUNT
and import from there), WHERE, MOUNT, then the module names.  Afterwards one transaction record
goes through the imported protocol modules, proving the code measured works."""

import gc
import sys

import vfs

from host_sim.device import results


def main(mode, where, mount, modules):
    gc.collect()
    base = gc.mem_alloc()
    image = 0
    if mode == "romfs":
        with open(where, "rb") as f:
            buf = f.read()
        gc.collect()
        image = gc.mem_alloc() - base
        vfs.mount(vfs.VfsRom(buf), mount)
        where = mount
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
    results.report({"runtime": results.runtime_name(), "used": used, "image": image, "files": files,
                    "wire": wire.hex(), "seq": back.get("seq"), "amount": back.get("amount")})


main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
