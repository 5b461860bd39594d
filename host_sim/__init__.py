"""The host-side tools: backend, emulators, benchmarks, the virtual board and the device toolchain.

ROOT is the directory that holds firmware/, protocol/ and hardware/ beside this package: the checkout,
or site-packages when the project is pip-installed (the device sources are installed with it)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
