"""`python -m host_sim flash` deploys the compiled tree over a REPL port (here a virtual board's)."""

import os
import subprocess
import sys

from host_sim import build
from tests.vboard.conftest import mpremote


def test_flash_deploys_every_built_file(console_port):
    proc = subprocess.run([sys.executable, "-m", "host_sim", "flash", "--board", "virtual", "--port", console_port],
                          capture_output=True, text=True, timeout=120, cwd=build.ROOT)
    assert proc.returncode == 0, proc.stderr
    build_dir = os.path.join(build.ROOT, "build", "virtual")
    local = {}
    for dirpath, _, files in os.walk(build_dir):
        for name in files:
            path = os.path.join(dirpath, name)
            local[os.path.relpath(path, build_dir)] = os.path.getsize(path)
    listing = mpremote(console_port, "exec", """
import os
def walk(d):
    for name, kind, *_ in os.ilistdir(d or '.'):
        p = d + '/' + name if d else name
        if kind == 0x4000:
            walk(p)
        else:
            print(p, os.stat(p)[6])
walk('')
""")
    remote = dict(line.rsplit(" ", 1) for line in listing.strip().splitlines())
    for rel, size in local.items():
        assert int(remote.get(rel, -1)) == size, "%s missing or wrong size on the board" % rel
    assert "deployed %d files" % len(local) in proc.stdout
