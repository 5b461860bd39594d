"""Where things are, in a checkout and when the project is pip-installed.

ROOT holds firmware/, protocol/ and hardware/ beside host_sim/: the checkout, or site-packages after
`pip install .` (the device sources are installed with the tool, so build and flash find them there).
What the tools write (build products, test ticket keys, the development seal key) goes under the checkout
in a checkout, and under the user's cache and data directories for an installed tool, never into site-packages."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKOUT = os.path.exists(os.path.join(ROOT, "pyproject.toml"))


def _user_dir(variable, default):
    return os.path.join(os.environ.get(variable) or os.path.expanduser(default), "zhifu")


BUILD = os.path.join(ROOT, "build") if CHECKOUT else os.path.join(_user_dir("XDG_CACHE_HOME", "~/.cache"), "build")
TICKET_KEYS = (os.path.join(ROOT, "host_sim", ".ticket_keys") if CHECKOUT
               else os.path.join(_user_dir("XDG_DATA_HOME", "~/.local/share"), "ticket_keys"))
SEAL_KEYS = (os.path.join(ROOT, "host_sim", ".seal_keys") if CHECKOUT
             else os.path.join(_user_dir("XDG_DATA_HOME", "~/.local/share"), "seal_keys"))
