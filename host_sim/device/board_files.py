"""Directories and files on a board's filesystem, for `flash`.

Run on a board through mpremote: `run` this file, then `exec` one call of make_dirs() or remove()."""

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
