"""Directories and files on a board's filesystem, for `flash`.

Run on a board through mpremote: `run` this file, then `exec` one call of make_dirs(), remove() or hashes()."""

import os


def make_dirs(dirs):
    """Create `dirs` (parents first) where they do not exist yet."""
    for d in dirs:
        try:
            os.mkdir(d)
        except OSError:
            pass


def remove(files, dirs):
    """Remove `files`, then the directories `dirs` (deepest first), where they exist."""
    for f in files:
        try:
            os.remove(f)
        except OSError:
            pass
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:
            pass


def hashes(files):
    """Print "sha256 <path> <hex>" for each of `files` as read back from the filesystem ("-" for a file that
    cannot be read), so the host can check what it wrote."""
    import hashlib

    buf = bytearray(512)
    for f in files:
        h = hashlib.sha256()
        try:
            with open(f, "rb") as fh:
                while True:
                    n = fh.readinto(buf)
                    if not n:
                        break
                    h.update(buf if n == len(buf) else buf[:n])
            digest = "".join("%02x" % b for b in h.digest())
        except OSError:
            digest = "-"
        print("sha256", f, digest)
