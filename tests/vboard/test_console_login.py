"""The technician console on a provisioned virtual board, through `python -m host_sim console`: a technician
key issued by the config authority (`bundle techkey`) logs in and `--exec status` prints the status JSON;
taps go on while a technician is logged in and after a cable is pulled mid-command; a key the authority
did not sign is refused and locks the console out after the configured number of tries."""

import json
import os
import subprocess
import sys

import pytest

from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import build, bundle, flash, provision
from host_sim.tools import console as client
from protocol import cpm
from tests.vboard.helpers import mpremote, provisioned


@pytest.fixture
def keys(tmp_path):
    bundle.keygen(str(tmp_path / "authority.pem"), 1)
    bundle.keygen(str(tmp_path / "stranger.pem"), 1)
    bundle.techkey(str(tmp_path / "authority.pem"), "alice", "technician", 30, str(tmp_path / "alice.tech"))
    bundle.techkey(str(tmp_path / "stranger.pem"), "mallory", "technician", 30, str(tmp_path / "mallory.tech"))
    return tmp_path


def console(port, key, command):
    return subprocess.run([sys.executable, "-m", "host_sim", "console", port, "--key", str(key), "--exec", command],
                          capture_output=True, text=True, timeout=60, cwd=build.ROOT)


@pytest.mark.virtual_only("watches the firmware process")
def test_console_exec_status_prints_the_status_json_and_taps_go_on(board, events, keys, tmp_path):
    terminal = provisioned(board, str(tmp_path / "collector.db"), config_keys=str(keys / "authority.pem.pub"))
    port = board.ports["console"]
    # A technician is logged in and has half typed a command when the cable is pulled: taps go on.
    key, cert = bundle.load_techkey(str(keys / "alice.tech"))
    session = client.Session(port)
    session.settle()
    assert session.login(key, cert).startswith("alice technician")
    session.ser.write(b"sta")
    session.close()
    scanner = ScannerEmulator(board.ports["scanner"])
    scanner.present(cpm.encode("6212345678901234569", atc=1, cryptogram=os.urandom(8)))
    _, ev = events.wait_display()
    assert ev["text"] == "PAID 2.00"

    got = console(port, keys / "alice.tech", "status")
    assert got.returncode == 0, got.stderr
    status = json.loads(got.stdout)
    assert status["terminal"] == terminal
    assert status["queue"] >= 1 and status["damaged"] == 0
    assert {"config", "clock", "health", "heap_free", "uptime_s", "quarantined", "log"} <= set(status)
    assert "6212345678901234569" not in got.stdout

    got = console(port, keys / "alice.tech", "log 50")
    assert got.returncode == 0, got.stderr
    assert "S console: alice logged in (technician)" in got.stdout
    assert "I console: alice: status" in got.stdout
    assert "6212345678901234569" not in got.stdout
    assert board.proc.poll() is None


def test_a_wrong_key_is_refused_and_locks_the_console_out(board, keys, tmp_path):
    settings = tmp_path / "console.json"
    settings.write_text('{"max_tries": 2, "lockout_s": 600}')
    mpremote(board.ports["console"], "exec", "import os\ntry:\n os.mkdir('/flash/config')\nexcept OSError:\n pass")
    mpremote(board.ports["console"], "fs", "cp", str(settings), ":/flash/config/console.json")
    provisioned(board, str(tmp_path / "collector.db"), config_keys=str(keys / "authority.pem.pub"))
    port = board.ports["console"]

    first = console(port, keys / "mallory.tech", "status")
    assert first.returncode == 1 and first.stdout == ""
    assert first.stderr.strip() == "console: certificate refused: bad signature on certificate (config key 1)"
    second = console(port, keys / "mallory.tech", "status")
    assert second.returncode == 1
    assert "2 failed logins: locked for 600 s" in second.stderr
    # now even the right key waits
    third = console(port, keys / "alice.tech", "status")
    assert third.returncode == 1 and "locked after failed logins: try again in" in third.stderr


def test_a_missing_or_foreign_key_file_is_one_line_and_exit_2(tmp_path, console_port):
    bad = tmp_path / "bad.tech"
    bad.write_text("not a key\n")
    got = console(console_port, bad, "status")
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "holds no private key" in got.stderr


@pytest.mark.virtual_only("watches the firmware process and powers it again")
def test_service_stops_the_terminal_and_leaves_the_repl_to_the_technician(board, keys, tmp_path):
    provisioned(board, str(tmp_path / "collector.db"), config_keys=str(keys / "authority.pem.pub"))
    port = board.ports["console"]
    mark = board.console_mark()
    got = console(port, keys / "alice.tech", "service")
    assert got.returncode == 0, got.stderr
    board.wait_console(b"service mode: terminal stopped, REPL open", timeout=10, since=mark)
    out = mpremote(port, "exec", "import os; print(open('/flash/log/' + sorted(os.listdir('/flash/log'))[-1]).read())")
    assert "S console: alice entered service mode" in out
    assert board.proc.poll() is None  # the board waits at its REPL; a reset brings the terminal back
    mark = board.console_mark()
    board.restart()
    board.wait_console(b"ready:", timeout=20, since=mark)
    boots = board.boots
    mark = board.console_mark()
    got = console(port, keys / "alice.tech", "reboot")
    assert got.returncode == 0, got.stderr
    board.wait_console(b"ready:", timeout=20, since=mark)
    assert board.boots == boots + 1


@pytest.mark.virtual_only("counts the firmware's boots and watches its process")
def test_a_provisioned_board_locks_its_repl_and_the_technician_key_opens_it(board, keys, tmp_path):
    db = str(tmp_path / "collector.db")
    terminal = provisioned(board, db, config_keys=str(keys / "authority.pem.pub"))
    port = board.ports["console"]
    boots = board.boots
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    try:
        got = subprocess.run([exe, "connect", port, "exec", "print(open('/flash/keys/device.key','rb').read())"],
                             capture_output=True, text=True, timeout=10)
        assert got.returncode != 0
        out = got.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode()
    assert "b'" not in out  # no key, no REPL
    assert board.boots == boots and board.proc.poll() is None  # Ctrl-C neither reached the REPL nor reset it
    assert json.loads(console(port, keys / "alice.tech", "status").stdout)["terminal"] == terminal

    # provision and flash still work, with the technician key
    mark = board.console_mark()
    again = provision.provision(port, db, config_keys=str(keys / "authority.pem.pub"),
                                tech_key=str(keys / "alice.tech"))
    assert again == terminal
    board.wait_console(b"ready:", timeout=20, since=mark)
    rows, files = flash.flash("virtual", port, tech_key=str(keys / "alice.tech"))
    assert files
