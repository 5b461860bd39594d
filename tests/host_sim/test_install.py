"""`pip install .` gives a `zhifu` command equal to `python -m host_sim`, working from any directory,
with the device sources installed beside it so build finds them (host_sim/paths.py)."""

import json
import os
import subprocess
import sys

import pytest

from host_sim.paths import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project pip-installed into a fresh target directory (dependencies come from the test venv)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                           "--target", str(target), ROOT], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "setuptools" in proc.stderr and "Could not find" in proc.stderr:
        pytest.skip("pip cannot fetch setuptools to build the package: %s" % proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def zhifu(installed, tmp_path, *argv):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(installed), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([str(installed / "bin" / "zhifu")] + list(argv), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_zhifu_help_lists_the_same_commands_from_another_directory(installed, tmp_path):
    proc = zhifu(installed, tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: zhifu ")
    here = subprocess.run([sys.executable, "-m", "host_sim", "--help"], cwd=ROOT, capture_output=True, text=True)
    commands = lambda text: [line.split()[0] for line in text.split("COMMAND\n", 2)[-1].splitlines()
                             if line.startswith("    ") and not line.startswith("     ")]
    assert commands(proc.stdout) == commands(here.stdout)
    assert len(commands(proc.stdout)) >= 13


def test_zhifu_runs_from_the_installed_copy_not_the_checkout(installed, tmp_path):
    proc = zhifu(installed, tmp_path, "qr", "make", "ticket", "--help")
    assert proc.returncode == 0, proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([sys.executable, "-c", "import host_sim.paths as p; print(p.ROOT, p.CHECKOUT)"],
                           cwd=tmp_path, env=dict(env, PYTHONPATH=str(installed)), capture_output=True, text=True)
    assert where.stdout.split() == [str(installed), "False"]


def test_zhifu_qr_decode_prints_json(installed, tmp_path):
    proc = zhifu(installed, tmp_path, "qr", "decode", "hQVDUFYwMWE=", "--json")
    local = subprocess.run([sys.executable, "-m", "host_sim", "qr", "decode", "hQVDUFYwMWE=", "--json"], cwd=ROOT,
                           capture_output=True, text=True)
    assert proc.returncode == local.returncode
    assert json.loads(proc.stdout) == json.loads(local.stdout)


def test_zhifu_build_finds_the_installed_firmware_and_writes_to_the_user_cache(installed, tmp_path):
    proc = zhifu(installed, tmp_path, "build", "--board", "virtual")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = tmp_path / "cache" / "zhifu" / "build" / "virtual"
    assert (built / "board.mpy").exists() and (built / "firmware" / "app.mpy").exists()
    assert not (installed / "build").exists()


def test_a_missing_optional_dependency_breaks_only_its_command(installed, tmp_path):
    """`--help` imports no command module, and a command whose import fails says so in one line."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "cryptography").mkdir()
    (blocker / "cryptography" / "__init__.py").write_text("raise ImportError('blocked', name='cryptography')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH="%s:%s" % (blocker, installed))
    run = lambda *argv: subprocess.run([str(installed / "bin" / "zhifu")] + list(argv), cwd=tmp_path, env=env,
                                       capture_output=True, text=True, timeout=60)
    assert run("--help").returncode == 0
    assert run("build", "--help").returncode == 0
    broken = run("bundle", "keygen", "--key", "k")
    assert broken.returncode == 2
    assert broken.stderr.strip().splitlines() == [
        "zhifu bundle: needs the Python module 'cryptography', which is not installed "
        "(pip install -r requirements.txt -r requirements-qr.txt)"]
