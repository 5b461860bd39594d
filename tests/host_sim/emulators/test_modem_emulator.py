"""The modem emulator from the host side: the command contract, pushed receive modes, and that no input
(junk, half commands, AT commands with wild arguments) stops it answering.

A client on the pty speaks AT with pyserial and reads replies with protocol.at, as a driver would.
"""

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

import serial
from hypothesis import strategies as st
from runtimes import draw_examples

from host_sim.emulators.modem import ModemEmulator
from host_sim.tools import build
from protocol import at
from tests.waiting import wait_until


class Client:
    def __init__(self, path, baud=115200):
        self.ser = serial.Serial(path, baud, timeout=0.05)
        self.reader = at.AtReader(1024)
        self.events = []

    def pump(self, until, timeout=5.0):
        """Read until `until(events)` holds; the events so far."""

        def read_more():
            if not until(self.events):
                self.events += self.reader.feed(self.ser.read(512))
            return until(self.events)

        # no pause between reads: the read itself waits up to the port's timeout
        wait_until(read_more, timeout, interval=0, what="the modem's reply",
                   context=lambda: repr(self.events[-10:]))
        return self.events

    def command(self, text, timeout=5.0):
        """Send one command; (final kind, lines) of its reply."""
        self.events = []
        self.ser.write(text.encode() + b"\r")
        events = self.pump(lambda evs: any(e[0] in at.FINALS for e in evs), timeout)
        final = next(e for e in events if e[0] in at.FINALS)
        return final[0], [e[1] for e in events if e[0] == at.LINE]

    def wait_booted(self, timeout=10.0):
        """A booting module ignores what it hears: send ATI<n>, a new n each time, until one is answered,
        then read up to the reply to the last one, so no reply is left for the next command to read."""
        sent = []

        def answered():
            sent.append(b"ATI%d" % len(sent))
            self.ser.write(sent[-1] + b"\r")
            try:
                self.pump(lambda evs: any(e[0] in at.FINALS for e in evs), timeout=0.5)
            except AssertionError:
                return False
            return True

        self.events = []
        wait_until(answered, timeout, interval=0, what="the module to boot")
        self.pump(lambda evs: (at.LINE, sent[-1], None) in evs and evs[-1][0] in at.FINALS)

    def close(self):
        self.ser.close()


def serve_once(payload):
    """A TCP server on loopback that sends `payload` to its first client; (socket, port)."""
    srv = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _ = srv.accept()
        conn.sendall(payload)
        time.sleep(1)  # stay connected while the modem pushes the payload: the test is about data, not a close
        conn.close()

    threading.Thread(target=run, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_emulate_modem_prints_its_port_and_answers_at():
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "emulate", "modem", "--dialect", "quectel",
                             "--connect", "127.0.0.1:9"], cwd=build.ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready
        first = json.loads(proc.stdout.readline())
        assert first["port"].startswith("/dev/pts/") and os.path.exists(first["port"])
        client = Client(first["port"])
        client.wait_booted()
        assert client.command("AT") == (at.OK, [b"AT"])  # echo is on after power-up, as on the modules
        assert client.command("ATE0") == (at.OK, [b"ATE0"])
        assert client.command("AT+CSQ") == (at.OK, [b"+CSQ: 21,99"])
        proc.stdin.write("no_network\n")  # faults can be injected while it runs
        proc.stdin.flush()
        wait_until(lambda: client.command("AT+CSQ") == (at.OK, [b"+CSQ: 99,99"]), timeout=10,
                   what="the no_network fault to take effect")
        assert client.command("AT+CEREG?") == (at.OK, [b"+CEREG: 0,2"])
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pushed_receive_modes_carry_every_byte_value():
    payload = bytes(range(256)) * 3
    for dialect, open_cmd, header in (
        ("simcom", 'AT+CIPOPEN=0,"TCP","127.0.0.1",%d', b"+RECEIVE,0,768"),
        ("quectel", 'AT+QIOPEN=1,0,"TCP","127.0.0.1",%d,0,1', b'+QIURC: "recv",0,768'),
    ):
        srv, port = serve_once(payload)
        with ModemEmulator(dialect, boot_s=0) as emu:
            client = Client(emu.port)
            client.command("ATE0")
            pdp = "AT+NETOPEN" if dialect == "simcom" else "AT+QIACT=1"
            assert client.command(pdp)[0] == at.OK
            assert client.command(open_cmd % port)[0] == at.OK
            events = client.pump(lambda evs: sum(len(e[2]) for e in evs if e[0] == at.DATA) >= 768)
            lines = [e[1] for e in events if e[0] == at.LINE]
            assert lines[0] in (b"+CIPOPEN: 0,0", b"+QIOPEN: 0,0") and header in lines
            assert b"".join(e[2] for e in events if e[0] == at.DATA) == payload
            client.close()
        srv.close()


def test_a_socket_to_nowhere_fails_with_the_dialects_error():
    for dialect, cmd, want in (("simcom", 'AT+CIPOPEN=0,"TCP","127.0.0.1",9', b"+CIPOPEN: 0,1"),
                               ("quectel", 'AT+QIOPEN=1,0,"TCP","127.0.0.1",9,0,0', b"+QIOPEN: 0,566")):
        with ModemEmulator(dialect, boot_s=0) as emu:
            client = Client(emu.port)
            client.command("ATE0")
            client.command("AT+NETOPEN" if dialect == "simcom" else "AT+QIACT=1")
            assert client.command(cmd)[0] == at.OK
            client.pump(lambda evs, want=want: any(e[0] == at.LINE and e[1] == want for e in evs))
            client.close()


COMMANDS = ["AT+CIPOPEN=", "AT+CIPSEND=", "AT+CIPRXGET=", "AT+QIOPEN=", "AT+QISEND=", "AT+QIRD=", "AT+QICLOSE=",
            "AT+CIPCLOSE=", "AT+NETOPEN", "AT+QIACT=", "AT+CEREG?", "ATE", "AT+CFUN=1,1", "AT", "+++", ""]
junk = st.lists(st.one_of(
    st.binary(max_size=80),
    st.tuples(st.sampled_from(COMMANDS), st.text("0123456789,\"TCP-x", max_size=20)).map(
        lambda t: (t[0] + t[1] + "\r").encode()),
), max_size=6).map(b"".join)


def answered(evs):
    """A +CSQ reply line followed by OK."""
    lines = [i for i, e in enumerate(evs) if e[0] == at.LINE and e[1].startswith(b"+CSQ: ")]
    return bool(lines) and any(e[0] == at.OK for e in evs[lines[-1] :])


def test_no_input_stops_it_answering():
    examples = draw_examples(junk, 15)
    for dialect in ("simcom", "quectel"):
        with ModemEmulator(dialect, boot_s=0.05) as emu:
            client = Client(emu.port, 921600)
            for data in examples:
                client.ser.write(data)
                # a payload the emulator may now wait for is at most 1500 bytes: fill it, then ask
                client.ser.write(b"\r" + b"A" * 1500)
                client.events = []
                for _ in range(10):  # junk may have restarted it (AT+CFUN=1,1): a booting modem hears nothing
                    client.ser.write(b"\rAT+CSQ\r")
                    try:
                        client.pump(answered, timeout=0.4)
                        break
                    except AssertionError:
                        continue
                assert answered(client.events), (data, client.events[-8:])
                assert emu._thread.is_alive()
            client.close()


def test_serve_drives_an_existing_serial_port():
    # A pty stands in for a USB-serial adapter: the emulator opens the device, we are the board.
    from host_sim.emulators import serial_pty

    board_fd, device_fd, device = serial_pty.open_raw_pty()
    try:
        with ModemEmulator("simcom", serve=device, boot_s=0) as emu:
            assert emu.port == device
            os.write(board_fd, b"ATE0\rAT+CEREG?\r")
            reader, events = at.AtReader(), []

            def two_replies():
                ready, _, _ = select.select([board_fd], [], [], 0.1)
                if ready:
                    events.extend(reader.feed(os.read(board_fd, 256)))
                return sum(1 for e in events if e[0] == at.OK) >= 2

            # no pause between reads: select itself waits up to 0.1 s
            wait_until(two_replies, timeout=5, interval=0, what="OK to both commands", context=lambda: repr(events))
            assert (at.LINE, b"+CEREG: 0,1", None) in events
    finally:
        os.close(board_fd)
        os.close(device_fd)


def test_lost_network_drops_the_pdp_with_its_urc_and_a_half_sent_payload_shows():
    for dialect, pdp, open_cmd, send in (
        ("simcom", "AT+NETOPEN", 'AT+CIPOPEN=0,"TCP","127.0.0.1",%d', "AT+CIPSEND=0,5"),
        ("quectel", "AT+QIACT=1", 'AT+QIOPEN=1,0,"TCP","127.0.0.1",%d,0,1', "AT+QISEND=0,5"),
    ):
        srv, port = serve_once(b"")
        with ModemEmulator(dialect, boot_s=0) as emu:
            client = Client(emu.port)
            client.command("ATE0")
            assert client.command(pdp)[0] == at.OK
            assert not emu.socket_open()
            assert client.command(open_cmd % port)[0] == at.OK
            client.pump(lambda evs: any(e[0] == at.LINE and e[1] in (b"+CIPOPEN: 0,0", b"+QIOPEN: 0,0")
                                        for e in evs))
            assert emu.socket_open()
            assert not emu.sending()
            client.ser.write(send.encode() + b"\r")
            client.pump(lambda evs: any(e[0] == at.PROMPT for e in evs))
            wait_until(emu.sending, what="the modem to wait for the payload")
            client.ser.write(b"12345")
            wait_until(lambda: not emu.sending(), what="the payload taken")
            client.events = []
            emu.lose_network()
            assert not emu.registered() and not emu.socket_open()
            client.pump(lambda evs: any(e[0] == at.LINE and e[1] == emu.PDP_LOST_URC.rstrip(b"\r\n") for e in evs))
            emu.clear("no_network")
            assert emu.registered()
            client.close()
        srv.close()


def test_late_prompt_keeps_what_it_heard_meanwhile_as_the_payload():
    # fault late_prompt_ms: the module is busy before its prompt; the payload written before the prompt
    # waits in its UART buffer and is taken once the prompt is out, and the command after it is a command
    for dialect, pdp, open_cmd, send, sent in (
        ("simcom", "AT+NETOPEN", 'AT+CIPOPEN=0,"TCP","127.0.0.1",%d', "AT+CIPSEND=0,5", at.OK),
        ("quectel", "AT+QIACT=1", 'AT+QIOPEN=1,0,"TCP","127.0.0.1",%d,0,0', "AT+QISEND=0,5", at.SEND_OK),
    ):
        srv = socket.create_server(("127.0.0.1", 0))
        heard = bytearray()

        def far_end(srv=srv, heard=heard):
            conn, _ = srv.accept()
            with conn:
                while len(heard) < 10:
                    data = conn.recv(64)
                    if not data:
                        return
                    heard.extend(data)

        threading.Thread(target=far_end, daemon=True).start()
        with ModemEmulator(dialect, boot_s=0) as emu:
            client = Client(emu.port)
            client.command("ATE0")
            assert client.command(pdp)[0] == at.OK
            assert client.command(open_cmd % srv.getsockname()[1])[0] == at.OK
            client.pump(lambda evs: any(e[0] == at.LINE and e[1] in (b"+CIPOPEN: 0,0", b"+QIOPEN: 0,0")
                                        for e in evs))
            emu.inject("late_prompt_ms", 300)
            client.events = []
            client.ser.write(send.encode() + b"\r12345AT\r")
            events = client.pump(lambda evs, sent=sent: [e[0] for e in evs if e[0] in at.FINALS] == [sent, at.OK])
            kinds = [e[0] for e in events if e[0] in at.FINALS or e[0] == at.PROMPT]
            assert kinds == [at.PROMPT, sent, at.OK], events  # nothing before the prompt, however late
            assert emu.log[-2:] == [send, "AT"] and emu.counters["faults_fired"] == 1
            assert "late_prompt_ms" not in emu.faults  # once
            client.events = []  # the next send is prompted at once again
            client.ser.write(send.encode() + b"\r")
            client.pump(lambda evs: any(e[0] == at.PROMPT for e in evs))
            client.ser.write(b"67890")
            client.pump(lambda evs, sent=sent: any(e[0] == sent for e in evs))
            wait_until(lambda heard=heard: len(heard) == 10, what="both payloads at the far end")
            assert bytes(heard) == b"1234567890"
            client.close()
        srv.close()
