"""`python -m host_sim fuzz`: the oracle catches what a parser must not raise, the command's JSON and
corpus folder, and the scale run (short by default, >= 1 000 000 inputs with --fuzz-long)."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from host_sim.fuzz import atheris_engine, cli, engine, targets
from host_sim.tools import build


def test_undocumented_exception_is_a_finding_with_its_input(monkeypatch):
    def broken(data):
        if len(data) > 3 and data[0] == data[1]:
            raise KeyError("planted")
        return "ok"

    monkeypatch.setitem(targets.TARGETS, "tlv", broken)
    result = engine.fuzz("tlv", 3000, seed=1)
    assert result.findings
    assert "KeyError: 'planted' at tests/host_sim/fuzz/test_fuzz_command.py" in result.findings[0][1]
    assert result.crashes and all(c[0] == c[1] for c in result.crashes)
    assert result.errors_by_class["finding"] >= len(result.findings)
    assert bytes.fromhex(result.findings[0][0]) == result.crashes[0]


def test_documented_errors_are_counted_not_found():
    result = engine.fuzz("link", 2000, seed=3)
    assert not result.findings
    assert result.inputs >= 2000 and result.errors_by_class["LinkError"] > 0 and result.errors_by_class["ok"] > 0
    assert result.kept


def test_command_json_and_corpus_folder(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "tlv").mkdir(parents=True)
    (folder / "tlv" / "crash-0011").write_bytes(b"\x9f")
    proc = subprocess.run([sys.executable, "-m", "host_sim", "fuzz", "--inputs", "600", "--target", "tlv",
                           "--target", "gm65", "--corpus", str(folder), "--keep", "5", "--engine", "builtin", "--json"],
                          cwd=build.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sorted(out["targets"]) == ["gm65", "tlv"]
    for name, got in out["targets"].items():
        assert set(got) >= {"inputs", "errors_by_class", "findings", "corpus_kept", "seconds"}
        assert got["inputs"] >= 300 and got["findings"] == 0
        files = os.listdir(folder / name)
        assert 0 < len([f for f in files if not f.startswith("crash-")]) <= 5
    assert "crash-0011" in os.listdir(folder / "tlv")  # past crashes stay
    assert out["totals"]["inputs"] == sum(t["inputs"] for t in out["targets"].values())
    assert out["totals"]["findings"] == 0 and out["totals"]["engine"].startswith("builtin")


@pytest.mark.skipif(not atheris_engine.available(), reason="atheris is not installed")
def test_atheris_engine_counts_and_keeps_a_corpus(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "host_sim", "fuzz", "--inputs", "3000", "--target", "record",
                           "--corpus", str(tmp_path), "--engine", "atheris", "--json"],
                          cwd=build.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    got = out["targets"]["record"]
    assert got["inputs"] == 3000 and got["findings"] == 0
    assert sum(got["errors_by_class"].values()) == 3000 and got["errors_by_class"]["RecordError"] > 0
    assert out["totals"]["engine"].startswith("atheris")
    assert os.listdir(tmp_path / "record")


def test_auto_engine_falls_back_to_the_builtin_mutator_without_atheris(monkeypatch, capsys):
    monkeypatch.setattr(atheris_engine, "available", lambda: False)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args(["--inputs", "200", "--target", "cobs", "--json"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["engine"].startswith("builtin") and out["targets"]["cobs"]["inputs"] >= 200
    assert cli.main(parser.parse_args(["--engine", "atheris", "--target", "cobs"])) == 2
    assert "needs the atheris package" in capsys.readouterr().err


def test_unknown_target_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "host_sim", "fuzz", "--target", "nope"],
                          cwd=build.ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown target 'nope'" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_scale_run_finds_nothing(fuzz_long):
    """Every target, 500 inputs each normally; with --fuzz-long over a million in total."""
    per_target = 60000 if fuzz_long else 500
    total = 0
    for name in targets.TARGETS:
        result = engine.fuzz(name, per_target, seed=11 if fuzz_long else 5)
        assert not result.findings, (name, result.findings[:3])
        total += result.inputs
    assert total >= per_target * len(targets.TARGETS)
    assert not fuzz_long or total >= 1_000_000


def test_write_corpus_replaces_kept_files(tmp_path):
    folder = str(tmp_path / "t")
    cli.write_corpus(folder, [b"a", b"b"], [b"boom"])
    cli.write_corpus(folder, [b"c"], [])
    names = sorted(os.listdir(folder))
    assert names == sorted([engine.digest(b"c"), "crash-" + engine.digest(b"boom")])
    assert sorted(cli.read_corpus(folder)) == [b"boom", b"c"]
