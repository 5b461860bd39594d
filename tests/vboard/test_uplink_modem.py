"""Store and forward end to end over a cellular modem: the virtual board's uplink UART goes to the modem
emulator, whose socket goes over real TCP on loopback to `python -m host_sim collector --listen`.
Faults on the way: the socket closed mid-batch, the PDP context deactivated, a power cut of the
terminal, the collector killed (SIGKILL) and restarted.  Every accepted tap reaches the collector
exactly once."""

import json
import socket
import subprocess
import sys
import time

import pytest

from host_sim import build, collector, provision, vboard
from host_sim.emulators.modem import ModemEmulator
from host_sim.emulators.scanner import ScannerEmulator
from protocol import cpm
from tests.vboard.conftest import Events, mpremote

PAN = "6217000010000000005"
# The modem driver (~25 KB) on top of the firmware and the NFC stack needs more than the default 192 KB.
HEAP = "256k"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_collector(db, port):
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                             "127.0.0.1:%d" % port], cwd=build.ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            assert time.monotonic() < deadline, "collector did not listen"
            time.sleep(0.1)


class TolerantEvents(Events):
    """Events that survive a power cut mid-line (a torn JSON line is skipped)."""

    def _run(self):
        buf = b""
        while not self._stop:
            try:
                buf += self.ser.read(512)
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                with self._cond:
                    self.items.append(item)
                    self._cond.notify_all()


def wait_ready(events, start, timeout=30):
    """The READY display of the next boot (the console tail is too noisy to search after a while)."""
    deadline = time.monotonic() + timeout
    while not any(e.get("text") == "READY" for e in events.items[start:]):
        assert time.monotonic() < deadline, "the board did not come back"
        time.sleep(0.1)


@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_every_tap_reaches_the_collector_once_through_modem_faults_power_cut_and_collector_restart(
        tmp_path, dialect):
    db = str(tmp_path / "c.db")
    port = free_port()
    emu = ModemEmulator(dialect, connect=("127.0.0.1", port), faults={"close_after": 500}, seed=11).start()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), heap=HEAP, attach={"uplink": emu.path}).start()
    server = None
    events = scanner = None
    paid = {}
    try:
        board.wait_console(b"ready:", timeout=20)
        cfg = {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port, "apn": "cmnet"}
        mpremote(board.ports["console"], "exec",
                 "import os\ntry:\n os.mkdir('/flash/config')\nexcept OSError:\n pass\n"
                 "with open('/flash/config/uplink.json', 'w') as f:\n f.write(%r)" % json.dumps(cfg))
        mark = board.console_mark()
        provision.provision(board.ports["console"], db)
        board.wait_console(b"ready:", timeout=20, since=mark)
        server = start_collector(db, port)
        events = TolerantEvents(board.ports["events"])
        scanner = ScannerEmulator(board.ports["scanner"])
        seen = 0
        for tap in range(10):
            if tap == 3:
                emu.inject("pdp_deact_after", emu.counters["bytes_up"] + 300)
            if tap == 6:
                server.kill()  # SIGKILL, whatever it was doing
                server.wait()
            if tap == 8:
                server = start_collector(db, port)
            payload = cpm.encode(PAN, atc=300 + tap, cryptogram=bytes(8))
            attempt = 0
            while True:
                scanner.present(payload)
                attempt += 1
                if tap == 4 and attempt == 1:  # cut the power while the code is being read
                    time.sleep(0.05)
                    mark = len(events.items)
                    board.power_cut()
                    board.power_on()
                    wait_ready(events, mark)
                    seen = len(events.items)
                try:
                    i, ev = events.wait_display(seen, timeout=5)
                except TimeoutError:
                    continue  # no answer: the passenger shows the code again
                seen = i + 1
                if ev["text"].startswith("DECLINED"):
                    continue
                seq = int(ev["detail"].lstrip("#"))
                assert paid.setdefault(tap, seq) == seq, "a re-presented code was charged again"
                break
            time.sleep(0.3)
        store = collector.Store(db)
        deadline = time.monotonic() + 90
        while True:
            rows = store.query("SELECT seq, atc FROM records")
            if {r[0] for r in rows} >= set(paid.values()):
                break
            assert time.monotonic() < deadline, "missing %s; console:\n%s" % (
                sorted(set(paid.values()) - {r[0] for r in rows}), board.console_text()[-3000:])
            time.sleep(0.3)
        store.close()
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if events is not None:
            events.close()
        if scanner is not None:
            scanner.close()
        board.stop()
        emu.stop()
    atcs = [r[1] for r in rows]
    assert len(paid) == 10 and set(paid.values()) <= {r[0] for r in rows}
    assert len(set(atcs)) == len(atcs), "a presented code stored twice"
    assert emu.counters["faults_fired"] >= 2 and emu.counters["opens"] >= 3
