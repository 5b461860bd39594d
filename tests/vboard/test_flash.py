"""`python -m host_sim flash` deploys the compiled tree over a REPL port (here a virtual board's)."""

import os
import subprocess
import sys

import pytest

from host_sim.tools import build, flash
from tests.vboard.helpers import mpremote

WALK = """
import os
def walk(d):
    for name, kind, *_ in os.ilistdir(d or '.'):
        p = d + '/' + name if d else name
        if kind == 0x4000:
            print(p + '/', 0)
            walk(p)
        else:
            print(p, os.stat(p)[6])
walk('')
"""


def board_files(port):
    """path -> size of every file in the board's working directory (directories end in '/')."""
    listing = mpremote(port, "exec", WALK)
    return {path: int(size) for path, size in (line.rsplit(" ", 1) for line in listing.strip().splitlines())}


def host_flash(port, *extra):
    return subprocess.run([sys.executable, "-m", "host_sim", "flash", "--board", "virtual", "--port", port, *extra],
                          capture_output=True, text=True, timeout=120, cwd=build.ROOT)


def test_flash_deploys_every_built_file(console_port):
    proc = host_flash(console_port)
    assert proc.returncode == 0, proc.stderr
    build_dir = os.path.join(build.ROOT, "build", "virtual")
    local = {rel: os.path.getsize(os.path.join(build_dir, rel))
             for rel, _, _ in build.build("virtual") if build.deployed(rel)}
    remote = board_files(console_port)
    for rel, size in local.items():
        assert remote.get(rel, -1) == size, "%s missing or wrong size on the board" % rel
    for name in (build.ROMFS_IMAGE, build.FREEZE_MANIFEST):  # build products, not the board's files
        assert name not in remote
    assert "deployed %d files" % len(local) in proc.stdout
    assert "verified: the SHA-256 of each of the %d files read back from the board matches" % len(local) in proc.stdout


@pytest.mark.virtual_only("a board without a ROM partition")
def test_romfs_deploy_is_refused_by_a_board_without_a_rom_partition(board):
    """The unix port has no ROM partition (no vfs.rom_ioctl): the image is refused and nothing changes."""
    port = board.ports["console"]
    before = board_files(port)
    proc = host_flash(port, "--romfs")
    assert proc.returncode == 1
    assert "ROMFS is not enabled on this device" in proc.stderr
    assert "filesystem is unchanged" in proc.stderr
    assert board_files(port) == before
    assert "firmware/app.mpy" in before


@pytest.mark.virtual_only("a board without a ROM partition")
def test_romfs_flash_clears_the_filesystem_copies_that_would_shadow_the_image(board):
    """What `flash --romfs` does to the filesystem after the image went in, run on a real REPL: the
    image's modules and their emptied directories go, boot.py and main.py stay, other files stay."""
    port = board.ports["console"]
    rows = build.build("virtual")
    modules = [rel for rel, _, _ in rows if build.in_image(rel)]
    mpremote(port, "exec", "f = open('firmware/keep.txt', 'w'); f.write('x'); f.close()")
    mpremote(port, *flash.remove_commands(modules))
    left = board_files(port)
    assert not [rel for rel in modules if rel in left]
    assert "protocol/" not in left and "firmware/drivers/" not in left
    assert left["firmware/keep.txt"] == 1  # not ours: kept, and so is its directory
    assert {"boot.py", "main.py"} <= set(left)
