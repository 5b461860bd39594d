"""Shared test setup: the two-runtime `runtime` fixture (ring 2), board options, markers, hypothesis.

Everything lives in tests/runtimes.py (so it can also be loaded as a plugin with `-p runtimes`); this
file puts the repo root and tests/ on sys.path and re-exports its hooks and fixtures:

    runtime       fixture, params [cpython] [micropython] (+ [board] with --port): runtime.run(body, *args),
                  runtime.run_many(body, [args, ...])
    real_board    fixture: the board on --port, skips without it ("needs a real board: pass --port ...")
    fuzz_long     fixture: True with --fuzz-long (hypothesis profile "long"; default profile "ci")
    markers       board (skipped without --port), slow, vboard
    options       --runtime cpython|micropython|both|board, --port DEVICE, --board-flashed, --mp-heap,
                  --fuzz-long, --board-scanner|nfc|uplink|gps|driver|events DEVICE (the --port board's
                  lines on serial adapters: tests/vboard/conftest.py)
"""

import os
import sys

import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_TESTS)
for _path in (_TESTS, _ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# pytest finds hooks and fixtures by name in this module.
from runtimes import (  # noqa: E402  (after the sys.path set-up above)
    fuzz_long,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    real_board,
    runtime,
)

from tests.host_sim.databases import db, pg_db, pg_server  # noqa: E402  (the collector's databases)

__all__ = [
    "db",
    "pg_db",
    "pg_server",
    "fuzz_long",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "real_board",
    "runtime",
]


@pytest.fixture
def sim_runtime(runtime):
    """`runtime` for bodies over host-side models (host_sim/device/norflash.py): a real board has no such module.
    On MicroPython the model's flash array lives in the heap (on a board it is the chip), so the heap gets the
    room it takes."""
    if runtime.name == "board":
        pytest.skip("a host-side model, not deployed to a board")
    if runtime.name == "micropython":
        from runtimes import MicroPythonRuntime

        return MicroPythonRuntime(heap="192k")
    return runtime
