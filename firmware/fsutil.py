"""Small filesystem helpers MicroPython's os module lacks."""

import os


def makedirs(path):
    part = ""
    for name in path.split("/"):
        if not name:
            continue
        part += "/" + name if (part or path.startswith("/")) else name
        try:
            os.mkdir(part)
        except OSError:
            pass


def write_atomic(path, data):
    """Replace a small file so that a power cut leaves either the old or the new content."""
    with open(path + ".new", "wb") as f:
        f.write(data)
    os.rename(path + ".new", path)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
