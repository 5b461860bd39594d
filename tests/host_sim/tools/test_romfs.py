"""The ROMFS image works on the real runtime: the MicroPython unix port mounts it with vfs.VfsRom and
imports the whole terminal from it, and `bench heap` reports what that saves."""

import json
import os
import subprocess
import sys

import pytest

from host_sim import micropython
from host_sim.bench import heap as bench_heap
from host_sim.tools import build
from protocol import frame, record

LISTING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "romfs_listing.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every board built once into a scratch directory: board -> (build dir, rows)."""
    root = tmp_path_factory.mktemp("build")
    return {board: (str(root / board), build.build(board, str(root / board))) for board in build.BOARDS}


@pytest.mark.parametrize("board", build.BOARDS)
def test_image_holds_exactly_the_boards_modules(built, board):
    out, rows = built[board]
    # the listing reads the whole image into RAM (a device maps it in place): room for all of it
    listed = micropython.run_program(LISTING, [os.path.join(out, build.ROMFS_IMAGE)], heap="1m", timeout=60)
    want = {rel: os.path.getsize(os.path.join(out, rel)) for rel, _, _ in rows if build.in_image(rel)}
    assert {rel: int(size) for rel, size in listed.items()} == want
    assert "main.py" not in listed and "boot.py" not in listed


def test_terminal_imports_from_the_image_and_speaks_the_protocol(built):
    out, rows = built["virtual"]
    modules = bench_heap.module_names([rel for rel, _, _ in rows if build.in_image(rel)])
    assert "firmware.app" in modules and "protocol" in modules and "board" in modules
    got = bench_heap.measure("romfs", os.path.join(out, build.ROMFS_IMAGE), modules)
    rels = [rel for rel, _, _ in rows if build.in_image(rel)]
    assert got["files"] == ["/rom/" + rel for rel in rels]  # each module came from the mounted image
    want = frame.encode(record.encode(b"T0000001", 42, 1700000000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED,
                                      0, 3, b"0123456789abcdef"))
    assert bytes.fromhex(got["wire"]) == want  # the same bytes as CPython's protocol/ produces
    assert (got["seq"], got["amount"]) == (42, 200)


def test_code_in_the_image_runs_in_place_from_the_buffer(built):
    """Imports from ROMFS leave the bytecode in the image, so the heap holds less than with .mpy files."""
    out, rows = built["virtual"]
    modules = bench_heap.module_names([rel for rel, _, _ in rows if build.in_image(rel)])
    from_files = bench_heap.measure("mpy", out, modules)
    from_image = bench_heap.measure("romfs", os.path.join(out, build.ROMFS_IMAGE), modules)
    assert from_files["files"] == [os.path.join(out, rel) for rel, _, _ in rows if build.in_image(rel)]
    assert from_image["image"] >= os.path.getsize(os.path.join(out, build.ROMFS_IMAGE))
    assert from_image["used"] - from_image["image"] < from_files["used"]


def test_bench_heap_command_reports_the_contract_keys():
    proc = subprocess.run([sys.executable, "-m", "host_sim", "bench", "heap", "--json"], cwd=build.ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    assert got["modules"] == len([s for s in build.sources("virtual") if build.in_image(s[1])])
    assert got["romfs_import_bytes"] == got["romfs_import_bytes_excluding_image"] + got["romfs_image_heap_bytes"]
    for key in ("mpy_import_bytes", "romfs_import_bytes", "romfs_image_bytes", "romfs_import_bytes_excluding_image"):
        assert got[key] > 0
