"""The modem driver (firmware/drivers/modem.py via firmware/transport.py) on the real MicroPython VM,
against the modem emulator on a pty, both dialects, bridged to a real TCP echo server on loopback.

Each case runs tests/firmware/modem_session.py in `micropython` with the virtual board: it sends
blocks holding every byte value and reads them back, reconnecting with backoff whenever the link
fails.  Faults come from the emulator; the checks are that every block came back intact, that the
driver noticed and handled each fault the way the case expects, and that nothing escaped.
"""

import os
import select
import socket
import threading

import pytest

from host_sim import micropython
from host_sim.emulators import serial_pty
from host_sim.emulators.modem import ModemEmulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SESSION = os.path.join(ROOT, "tests", "firmware", "modem_session.py")

pytestmark = pytest.mark.vboard


class EchoServer:
    """TCP on loopback that sends back whatever it receives; counts connections and keeps what each one
    received (`received`, one bytearray per connection)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.received.append(bytearray())
            threading.Thread(target=self._echo, args=(conn, self.received[-1]), daemon=True).start()

    def _echo(self, conn, received):
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                received.extend(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def run_session(tmp_path, emu, port, rounds=6, size=700, dialect=None):
    """The MicroPython session against `emu` (anything with a pty `port`); its JSON result."""
    env = {"ZF_UART_UPLINK": emu.port, "ZF_FLASH": str(tmp_path / "flash.img")}
    if getattr(emu, "pwrkey_path", None):
        env.update(ZF_MODEM_PWRKEY=emu.pwrkey_path, MODEM_TIME_SCALE=str(emu.time_scale))
    argv = [dialect or emu.dialect, "127.0.0.1", str(port), str(rounds), str(size)]
    result = micropython.run_program(SESSION, argv, heap="192k", board=True, env=env, timeout=150)
    assert "escaped" not in result, result
    assert "corrupt" not in result, result
    return result


DIALECTS = ("simcom", "quectel")


class PtyEcho:
    """The far end of a direct serial line: a pty whose host side echoes every byte."""

    def __init__(self):
        self.fd, self._slave, self.port = serial_pty.open_raw_pty()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    continue
                os.write(self.fd, data)

    def close(self):
        self._stop = True
        self._thread.join(timeout=2)
        os.close(self.fd)
        os.close(self._slave)


def test_serial_transport_carries_every_byte_value(tmp_path):
    line = PtyEcho()
    try:
        result = run_session(tmp_path, line, 0, rounds=4, size=700, dialect="serial")
    finally:
        line.close()
    assert result["rounds"] == 4 and result["attempts"] == 4 and result["errors"] == [], result
    assert result["signal"] is None and result["registration"] is None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_clean_link_carries_every_byte_value(tmp_path, echo, dialect):
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port)) as emu:
        result = run_session(tmp_path, emu, echo.port)
        log = list(emu.log)
    assert result["rounds"] == 6 and result["attempts"] == 6, result
    assert result["connect_failures"] == 0 and result["power_cycles"] == 0, result
    assert result["signal"] == 21 and result["registration"] == 1, result
    assert echo.connections == 1
    # the dialect's own commands brought the link up and moved the data
    wanted = ("AT+NETOPEN", "AT+CIPOPEN=0", "AT+CIPSEND=0", "AT+CIPRXGET=2,0") if dialect == "simcom" else \
        ("AT+QIACT=1", "AT+QIOPEN=1,0", "AT+QISEND=0", "AT+QIRD=0")
    for cmd in wanted:
        assert any(c.startswith(cmd) for c in log), (cmd, log[:30])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_socket_close_pdp_loss_and_lost_registration_mid_batch(tmp_path, echo, dialect):
    faults = {"close_after": 1000, "pdp_deact_after": 2500, "lose_registration_after": 4000}
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults=faults) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=8)
        fired = emu.counters["faults_fired"]
        log = list(emu.log)
    assert result["rounds"] == 8, result
    assert fired == 3
    assert result["attempts"] >= 8 + 3, result  # each fault cost at least one block sent again
    assert echo.connections >= 4
    errors = " | ".join(result["errors"])
    assert "socket closed" in errors and "PDP context deactivated" in errors, errors
    assert "not registered" in errors, errors  # the outage was seen and waited out
    # the PDP context was brought up again after it was lost, the way each manual says
    again = ("AT+NETCLOSE", "AT+NETOPEN") if dialect == "simcom" else ("AT+QIDEACT=1", "AT+QIACT=1")
    assert log.count(again[1]) >= 2 and again[0] in log, log


@pytest.mark.parametrize("dialect", DIALECTS)
def test_noise_split_urcs_slow_link_and_cme_errors(tmp_path, echo, dialect):
    # 3 CME errors in a row land on AT+CSQ, AT+CEREG? and AT+CREG? of the first attempt: it fails
    faults = {"garbage": 0.3, "split": 1, "slow_ms": 10, "cme_errors": 3}
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults=faults, seed=7) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=500)
        cme = emu.counters["cme_errors"]
    assert result["rounds"] == 3, result
    assert cme == 3 and result["cme_errors"] == 3, result
    assert result["connect_failures"] >= 1, result
    assert any("+CME ERROR: 100" in e for e in result["errors"]), result


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_network_is_waited_out(tmp_path, echo, dialect):
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults={"no_network": 1}) as emu:
        timer = threading.Timer(1.5, lambda: emu.faults.pop("no_network", None))
        timer.start()
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=300)
        timer.cancel()
    assert result["rounds"] == 3, result
    assert result["connect_failures"] >= 3, result
    assert "not registered (stat 2)" in result["errors"], result


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_stuck_modem_is_power_cycled(tmp_path, echo, dialect):
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults={"stuck": 1}) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=300)
        resets = emu.counters["resets"]
        log = list(emu.log)
    assert result["rounds"] == 3, result
    opener = "AT+CIPOPEN" if dialect == "simcom" else "AT+QIOPEN"
    assert any(e.startswith(opener) for e in result["errors"]), result
    # MAX_FAILURES (3) failed attempts in a row -> one power cycle (AT+CFUN=1,1: the virtual board has
    # no PWRKEY pin), which is what clears a stuck modem
    assert result["connect_failures"] == 3 and result["power_cycles"] == 1 and resets == 1, (result, resets)
    assert log.count("AT+CFUN=1,1") == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_modem_that_hangs_mid_batch_is_power_cycled_with_pwrkey(tmp_path, echo, dialect):
    # The board's PWRKEY pin goes to the emulator (ZF_MODEM_PWRKEY); pulses at a tenth of real time.
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults={"hang_after": 700}, pwrkey=True,
                       time_scale=0.1) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=500)
        counters = dict(emu.counters)
    assert result["rounds"] == 3, result
    # the command that met the hung modem (a send or a read) timed out, reconnecting found it deaf,
    # PWRKEY brought it back
    deaf = [e for e in result["errors"] if e.endswith(": no answer")]
    assert deaf and deaf[0].startswith(("AT+CIPSEND", "AT+QISEND", "AT+CIPRXGET", "AT+QIRD")), result
    assert "modem does not answer AT" in result["errors"], result
    # the long press switched it off, the short one on again (AT+CFUN=1,1 would not have been heard)
    assert result["power_cycles"] == 1 and counters["power_offs"] == 1 and counters["faults_fired"] == 1, counters
    assert counters["resets"] == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_untrue_urcs_cost_reconnects_but_never_data(tmp_path, echo, dialect):
    # URCs that lie (socket closed, PDP lost, modem restarted, data waiting, a payload header whose
    # bytes never come and so swallow the next reply): the driver may drop and rebuild the link, but
    # every block arrives intact and nothing escapes.
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults={"false_urcs": 0.25}, seed=3) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=4, size=400)
        lies = emu.counters["false_urcs"]
    assert result["rounds"] == 4, result
    assert lies >= 5, lies  # (which ones land, and whether they cost a reconnect, depends on timing)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_prompt_later_than_the_send_timeout_costs_one_reconnect_and_no_command(tmp_path, echo, dialect):
    # Weak coverage: the first send's "> " comes after the driver gave up on it (T_SEND, scaled to 1 s by
    # time_scale), and the module then takes exactly <len> bytes as payload.  The driver must have it back
    # in command mode before its next command: every command of the reconnect is parsed as a command.
    send = "AT+CIPSEND=0," if dialect == "simcom" else "AT+QISEND=0,"
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults={"late_prompt_ms": 1500}, pwrkey=True,
                       time_scale=0.1) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=500)
        counters = dict(emu.counters)
        log = list(emu.log)
    assert counters["faults_fired"] == 1, counters
    assert result["rounds"] == 3 and result["attempts"] == 4, result  # the first block was sent again, once
    assert send + "500: no answer" in result["errors"], result
    assert result["power_cycles"] == 0 and counters["resets"] == 0, result
    assert echo.connections == 2
    # the abandoned send's payload went to the first socket (whatever the driver filled it with), and no
    # AT command went to the far end on either socket
    assert all(b"AT" not in got for got in echo.received), echo.received
    # after the abandoned send, the reconnect began with a probe the modem answered, and its commands
    # were all parsed: the socket was opened again and the three blocks went up on it
    first = next(i for i, c in enumerate(log) if c.startswith(send))
    after = log[first + 1 :]
    assert after[0] == "AT", after[:5]
    opener = "AT+CIPOPEN=0" if dialect == "simcom" else "AT+QIOPEN=1,0"
    assert sum(c.startswith(opener) for c in after) == 1, after
    assert sum(c.startswith(send) for c in after) == 3, after



LATE_FINALS = {
    # A busy module answers a socket read 1.1 s after it was asked, past the driver's 1 s (T_SHORT): the reply,
    # already on its way when the timeout fires, is still the read's.  Taken by nobody, its final would answer
    # the next command, and the read would count as a dead link: a reconnect.
    "late_read": {"late_read_ms": 1100},
    # The line holds an earlier command's late OK when a send is asked: a send is answered with "> " (or an
    # error), so the driver waits for the prompt and writes its payload.  Were the OK taken as the send's
    # answer, the module would take the driver's next commands as the payload it is owed.
    "stale_ok": {"stale_ok": 1},
}


@pytest.mark.parametrize("fault", list(LATE_FINALS))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_late_final_answers_its_own_command_and_no_other(tmp_path, echo, dialect, fault):
    with ModemEmulator(dialect, connect=("127.0.0.1", echo.port), faults=LATE_FINALS[fault]) as emu:
        result = run_session(tmp_path, emu, echo.port, rounds=3, size=500)
        counters = dict(emu.counters)
    assert counters["faults_fired"] == 1, counters
    assert result["rounds"] == 3 and result["attempts"] == 3 and result["errors"] == [], result
    assert echo.connections == 1
    assert all(b"AT" not in got for got in echo.received), echo.received
