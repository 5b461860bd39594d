"""Everyday command-line mistakes: one clear line naming what is wrong, a non-zero exit, nothing created."""

import json
import os
import subprocess
import sys

import pytest

from host_sim.tools import build

ROOT = build.ROOT


def run(args, tmp_path, stdin=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "host_sim", *args], cwd=tmp_path, capture_output=True, text=True,
                          input=stdin, timeout=timeout, env=dict(os.environ, PYTHONPATH=ROOT))


def sqlite_db(path):
    import sqlite3

    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    return str(path)


# (arguments, text the one line must contain); "{tmp}" is the test's folder.
MISTAKES = [
    (["collector", "--db", "{tmp}/missing/dir/c.db", "--listen", "127.0.0.1:0"], "missing/dir does not exist"),
    (["collector", "--db", "{tmp}/text.txt", "--listen", "127.0.0.1:0"], "text.txt is not an SQLite database"),
    (["collector", "--db", "{tmp}", "--listen", "127.0.0.1:0"], "is a folder"),
    (["collector", "--db", "{tmp}/c.db", "--listen", "127.0.0.1:99999"], "port 99999 is not in 0..65535"),
    (["collector", "--db", "{tmp}/c.db", "--listen", "nohost"], "'nohost' is not HOST:PORT"),
    (["collector", "--db", "{tmp}/c.db"], "nothing to serve"),
    (["collector", "--db", "{tmp}/c.db", "--serial", "/dev/nonexistent"], "no serial device at /dev/nonexistent"),
    (["collector", "--db", "{tmp}/c.db", "--listen", "127.0.0.1:0", "--acquirer-rules", "{tmp}/text.txt"],
     "text.txt is not valid JSON"),
    (["collector", "--db", "{tmp}/c.db", "--listen", "127.0.0.1:0", "--bundles", "{tmp}/nowhere"], "no folder at"),
    (["acquirer", "--db", "{tmp}/typo.db"], "no database at"),
    (["acquirer", "--db", "{tmp}/good.db", "--rules", "{tmp}/text.txt"], "text.txt is not valid JSON"),
    (["acquirer", "--db", "{tmp}/good.db", "--rules", "{tmp}/none.json"], "cannot read"),
    (["report", "--db", "{tmp}/typo.db"], "no database at"),
    (["report", "--db", "{tmp}/text.txt"], "is not an SQLite database"),
    (["acquirer-host", "--listen", "127.0.0.1:70000"], "port 70000"),
    (["provision", "--port", "/dev/nonexistent", "--db", "{tmp}/missing/p.db"], "missing does not exist"),
    (["provision", "--port", "/dev/nonexistent", "--db", "{tmp}/p.db", "--uplink", "{tmp}/text.txt"],
     "text.txt is not valid JSON"),
    (["vboard", "--flash", "{tmp}/v.img", "--heap", "lots"], "'lots' is not a heap size"),
    (["vboard", "--flash", "{tmp}/v.img", "--uid", "zz"], "'zz' is not a hex id"),
    (["vboard", "--flash", "{tmp}/v.img", "--scanner", "/dev/nonexistent"], "no serial device"),
    (["emulate", "pn532", "--card", "no-such-card"], "no-such-card"),
    (["emulate", "scanner", "--port", "/dev/pts/999"], "no serial device at /dev/pts/999"),
    (["emulate", "pn532", "--port", "/dev/pts/999"], "no serial device at /dev/pts/999"),
    (["emulate", "modem", "--dialect", "simcom", "--serve", "/dev/pts/999"], "no serial device at /dev/pts/999"),
    (["emulate", "modem", "--dialect", "simcom", "--connect", "nohost"], "'nohost' is not HOST:PORT"),
    (["vboard", "--flash", "{tmp}/missing/v.img"], "missing does not exist"),
    (["vboard", "--flash", "{tmp}"], "is a folder"),
    (["qr", "decode", "--keys", "{tmp}/none.keys", "x"], "no file at"),
]


@pytest.mark.parametrize("args,says", MISTAKES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_a_non_zero_exit(tmp_path, args, says):
    (tmp_path / "text.txt").write_text("not a database, not JSON\n")
    sqlite_db(tmp_path / "good.db")
    before = sorted(os.listdir(tmp_path))
    proc = run([a.replace("{tmp}", str(tmp_path)) for a in args], tmp_path)
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert len(lines) == 1 and says in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == before  # no empty database, no image left behind


def test_the_emulated_scanner_sends_any_bytes_and_goes_on_after_a_bad_picture(tmp_path):
    import select

    import serial

    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "emulate", "scanner"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready
        port = json.loads(proc.stdout.readline())["port"]
        with serial.Serial(port, 9600, timeout=5) as ser:
            proc.stdin.write(b"\xff\xfenot utf-8\nimage:%s/none.png\nafter\n" % str(tmp_path).encode())
            proc.stdin.flush()
            assert ser.read_until(b"\r\n") == b"\xff\xfenot utf-8\r\n"
            assert json.loads(proc.stdout.readline())["error"].startswith("no such image")
            assert ser.read_until(b"\r\n") == b"after\r\n"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert proc.returncode == 0
