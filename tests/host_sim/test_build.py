"""The build compiles every device file with mpy-cross; a file mpy-cross rejects fails the build."""

import os
import subprocess
import sys

import pytest

from host_sim import build


def make_tree(root, bad=False):
    for d in ("firmware", "protocol", "hardware/boards"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "hardware/boards/virtual.py"), "w").write("NAME = 'virtual'\n")
    open(os.path.join(root, "firmware/main.py"), "w").write("import board\n")
    open(os.path.join(root, "firmware/app.py"), "w").write("def run(b):\n    return b\n")
    open(os.path.join(root, "protocol/codec.py"), "w").write(
        "def f(x):\n    return x +\n" if bad else "def f(x):\n    return x + 1\n")


def test_build_lays_out_the_board_root(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    rows = build.build("virtual", str(tmp_path / "out"))
    assert sorted(r[0] for r in rows) == ["board.mpy", "firmware/app.mpy", "main.py", "protocol/codec.mpy"]
    with open(tmp_path / "out" / "protocol" / "codec.mpy", "rb") as f:
        assert f.read(1) == b"M"  # the .mpy magic
    assert open(tmp_path / "out" / "main.py").read() == "import board\n"
    table = build.size_table("virtual", rows)
    assert "total (4 files)" in table


def test_a_file_mpy_cross_rejects_fails_the_build(tmp_path, monkeypatch):
    make_tree(str(tmp_path), bad=True)
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    with pytest.raises(build.BuildError) as err:
        build.build("virtual", str(tmp_path / "out"))
    assert "protocol/codec.py" in str(err.value)
    assert "SyntaxError" in str(err.value) or "invalid syntax" in str(err.value)


def test_stale_outputs_are_removed(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    build.build("virtual", str(tmp_path / "out"))
    os.remove(tmp_path / "protocol" / "codec.py")
    build.build("virtual", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out" / "protocol" / "codec.mpy")


def test_build_command_compiles_every_board_of_the_project():
    proc = subprocess.run([sys.executable, "-m", "host_sim", "build", "--board", "all"], capture_output=True,
                          text=True, timeout=300, cwd=build.ROOT)
    assert proc.returncode == 0, proc.stderr
    for board in build.BOARDS:
        assert "build/%s/" % board in proc.stdout
        assert os.path.exists(os.path.join(build.ROOT, "build", board, "board.mpy"))
