"""The build compiles every device file with mpy-cross; a file mpy-cross rejects fails the build."""

import os
import subprocess
import sys

import pytest

from host_sim.tools import build


def make_tree(root, bad=False):
    for d in ("firmware", "protocol", "hardware/boards"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "hardware/boards/virtual.py"), "w").write("NAME = 'virtual'\n")
    open(os.path.join(root, "hardware/boards/virtual_machine.py"), "w").write("def reset():\n    pass\n")
    open(os.path.join(root, "firmware/main.py"), "w").write("import board\n")
    open(os.path.join(root, "firmware/app.py"), "w").write("def run(b):\n    return b\n")
    open(os.path.join(root, "protocol/codec.py"), "w").write(
        "def f(x):\n    return x +\n" if bad else "def f(x):\n    return x + 1\n")


def test_build_lays_out_the_board_root(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    rows = build.build("virtual", str(tmp_path / "out"))
    assert sorted(r[0] for r in rows) == ["board.mpy", "firmware/app.mpy", "machine.mpy", "main.py",
                                            "protocol/codec.mpy"]
    with open(tmp_path / "out" / "protocol" / "codec.mpy", "rb") as f:
        assert f.read(1) == b"M"  # the .mpy magic
    assert open(tmp_path / "out" / "main.py").read() == "import board\n"
    table = build.size_table("virtual", rows)
    assert "total (5 files)" in table


@pytest.mark.parametrize("board, shared", [("virtual", []), ("esp32s3_gate", ["machine_board", "ssd1306_text"]),
                                           ("rp2040_bus", ["machine_board"])])
def test_the_modules_a_board_imports_are_deployed_beside_it(board, shared):
    rels = [rel for _, rel in build.sources(board)]
    extras = [installed for _, installed in build.BOARD_EXTRAS.get(board, ())]
    assert rels[:1 + len(extras) + len(shared)] == ["board.mpy"] + extras + [name + ".mpy" for name in shared]
    assert build.board_modules(board) == shared


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


def test_a_device_program_mpy_cross_rejects_fails_the_check(tmp_path, monkeypatch):
    device = tmp_path / "host_sim" / "device"
    device.mkdir(parents=True)
    (device / "good.py").write_text("import sys\nprint(sys.argv)\n")
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    assert build.check_device_programs() == ["host_sim/device/good.py"]
    (device / "bad.py").write_text("def f(x):\n    return x +\n")
    with pytest.raises(build.BuildError) as err:
        build.check_device_programs()
    assert "host_sim/device/bad.py" in str(err.value)


def test_build_command_compiles_every_board_of_the_project():
    proc = subprocess.run([sys.executable, "-m", "host_sim", "build", "--board", "all"], capture_output=True,
                          text=True, timeout=300, cwd=build.ROOT)
    assert proc.returncode == 0, proc.stderr
    for board in build.BOARDS:
        assert "build/%s/" % board in proc.stdout
        assert os.path.exists(os.path.join(build.ROOT, "build", board, "board.mpy"))
        for name in (build.ROMFS_IMAGE, build.FREEZE_MANIFEST):
            assert "build/%s/%s" % (board, name) in proc.stdout
    assert "host_sim/device/: " in proc.stdout  # the programs run inside MicroPython are compiled too


def _manifest_files(path):
    """The files a MicroPython manifest freezes, by running it with a recording freeze()."""
    frozen = []

    def freeze(base, scripts):
        frozen.extend(os.path.normpath(os.path.join(os.path.dirname(path), base, s)) for s in scripts)

    with open(path) as f:
        exec(f.read(), {"freeze": freeze})
    return frozen


def test_romfs_image_and_manifest_come_from_the_built_modules(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    out = tmp_path / "out"
    rows = build.build("virtual", str(out))
    modules = [rel for rel, _, _ in rows if build.in_image(rel)]
    assert modules == ["board.mpy", "machine.mpy", "firmware/app.mpy", "protocol/codec.mpy"]  # not main.py: run by name
    image = (out / build.ROMFS_IMAGE).read_bytes()
    assert image.startswith(b"\xd2\xcd\x31")  # the ROMFS header
    for rel in modules:  # every module's bytes are inside the image, verbatim
        assert (out / rel).read_bytes() in image
    assert b"main.py" not in image
    assert _manifest_files(str(out / build.FREEZE_MANIFEST)) == [str(out / rel) for rel in modules]
    assert not build.deployed(build.ROMFS_IMAGE) and not build.deployed(build.FREEZE_MANIFEST)
    assert all(build.deployed(rel) for rel, _, _ in rows)


def test_images_follow_the_sources(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    out = tmp_path / "out"
    build.build("virtual", str(out))
    before = (out / build.ROMFS_IMAGE).read_bytes()
    os.remove(tmp_path / "protocol" / "codec.py")
    build.build("virtual", str(out))
    assert (out / build.ROMFS_IMAGE).exists() and (out / build.FREEZE_MANIFEST).exists()  # not stale outputs
    assert len((out / build.ROMFS_IMAGE).read_bytes()) < len(before)
    frozen = [str(out / name) for name in ("board.mpy", "machine.mpy", "firmware/app.mpy")]
    assert _manifest_files(str(out / build.FREEZE_MANIFEST)) == frozen


def test_a_board_with_the_oled_gets_the_glyph_table(tmp_path, monkeypatch):
    from host_sim.tools import glyphs

    if glyphs.unifont_path() is None:
        pytest.skip("GNU Unifont is not installed (Debian package unifont): the build makes no glyph table")
    make_tree(str(tmp_path))
    open(os.path.join(tmp_path, "hardware/boards/gate.py"), "w").write("import ssd1306_text\n")
    open(os.path.join(tmp_path, "hardware/boards/ssd1306_text.py"), "w").write("GLYPHS = 'glyphs.bin'\n")
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    rows = build.build("gate", str(tmp_path / "out"))
    assert ("glyphs.bin", 0, len(glyphs.build_table()[0])) in rows
    assert (tmp_path / "out" / "glyphs.bin").read_bytes()[:4] == b"ZFG1"
    assert build.deployed("glyphs.bin") and not build.in_image("glyphs.bin")  # a file on the board, not code
    assert "glyphs.bin" not in [r[0] for r in build.build("virtual", str(tmp_path / "out2"))]  # no OLED: none
