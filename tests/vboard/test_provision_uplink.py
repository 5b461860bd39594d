"""`provision --uplink FILE.json` on a locked virtual board: with the technician key the uplink config lands on
/flash/config/uplink.json, read back and verified like provision's other files, and the terminal boots with it;
`{"link": "serial"}` switches it back."""

import json
import subprocess
import sys

from host_sim.tools import build, bundle, provision
from tests.vboard.helpers import mpremote, provisioned

MODEM = {"link": "modem", "dialect": "quectel", "host": "127.0.0.1", "port": 7000, "apn": "cmnet"}


def test_provision_writes_and_verifies_the_uplink_config_on_a_locked_board(board, tmp_path):
    bundle.keygen(str(tmp_path / "authority.pem"), 1)
    bundle.techkey(str(tmp_path / "authority.pem"), "alice", "technician", 30, str(tmp_path / "alice.tech"))
    db = str(tmp_path / "c.db")
    terminal = provisioned(board, db, config_keys=str(tmp_path / "authority.pem.pub"))  # the REPL locks
    port = board.ports["console"]
    (tmp_path / "modem.json").write_text(json.dumps(MODEM, indent=2))

    mark = board.console_mark()
    proc = subprocess.run([sys.executable, "-m", "host_sim", "provision", "--port", port, "--db", db,
                           "--config-keys", str(tmp_path / "authority.pem.pub"), "--key", str(tmp_path / "alice.tech"),
                           "--uplink", str(tmp_path / "modem.json")],
                          cwd=build.ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["terminal"] == terminal and out["uplink_file"] == "/flash/config/uplink.json"
    assert "/flash/config/uplink.json" in out["verified"]  # read back on the board, SHA-256 matched
    board.wait_console(b"ready:", timeout=30, since=mark)  # booted with the modem config

    (tmp_path / "serial.json").write_text('{"link": "serial"}')
    provision.provision(port, db, config_keys=str(tmp_path / "authority.pem.pub"),
                        tech_key=str(tmp_path / "alice.tech"), uplink=str(tmp_path / "serial.json"), reset=False)
    on_board = mpremote(port, "exec", "print(open('/flash/config/uplink.json').read())")
    assert json.loads(on_board.strip().splitlines()[-1]) == {"link": "serial"}
