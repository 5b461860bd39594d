"""Run by `micropython` (not pytest): mount the ROMFS image file argv[1] at /rom with vfs.VfsRom and
report every file in it with its size, as "RESULT {path: size}"."""

import json
import os
import sys

import vfs

MOUNT = "/rom"


def walk(d, out):
    for entry in os.ilistdir(d):
        name, kind = entry[0], entry[1]
        p = d + "/" + name
        if kind == 0x4000:
            walk(p, out)
        else:
            out[p[len(MOUNT) + 1:]] = os.stat(p)[6]
    return out


with open(sys.argv[1], "rb") as f:
    vfs.mount(vfs.VfsRom(f.read()), MOUNT)
print("RESULT " + json.dumps(walk(MOUNT, {})))
