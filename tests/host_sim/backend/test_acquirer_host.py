"""The acquirer host as a process on loopback TCP, and the collector's side of the link: requests are
answered; broken framing or bytes close only that connection, with a log line; a collector whose acquirer
is down, or answers garbage, keeps its transactions pending and decides them once it answers."""

import json
import logging
import socket
import subprocess
import sys
import threading

import pytest

from host_sim.backend import acquirer, acquirer_link, iso8583
from host_sim.tools import build
from tests.host_sim.helpers import (
    card_read,
    contactless_record,
    free_port,
    open_for_test,
    registered,
    seal_key_file,
    sealed_records,
)


@pytest.fixture
def acquirer_host(tmp_path):
    """`python -m host_sim acquirer-host` on a free port: (address, process); its log goes to a file."""
    log = open(tmp_path / "acquirer.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "acquirer-host", "--listen", "127.0.0.1:0"],
                            cwd=build.ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        address = json.loads(proc.stdout.readline())["listen"]
        yield address, proc, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def connect(address):
    host, _, port = address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


def recv_message(sock):
    header = sock.recv(2)
    if not header:
        return None
    n = int.from_bytes(header, "big")
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return iso8583.decode(data)


def good_request(seq=1, **card):
    rec = contactless_record(seq, card_read(**card))
    from host_sim.backend import card_data

    return acquirer_link.request(rec, card_data.card_data(None, rec, open_for_test), seq)


def log_text(log):
    log.flush()
    log.seek(0)
    return log.read()


def test_the_host_answers_over_tcp_and_survives_broken_input(acquirer_host):
    address, proc, log = acquirer_host
    with connect(address) as s:
        s.sendall(iso8583.framed(iso8583.encode(good_request(1))))
        s.sendall(iso8583.framed(iso8583.encode(good_request(2, cryptogram=bytes(8)))))
        first, second = recv_message(s), recv_message(s)
        assert (first["39"], first["11"]) == ("00", "000001")
        assert (second["39"], second.get("44")) == ("05", "cryptogram failed")
        s.sendall(iso8583.framed(b"0100" + b"\xff" * 20))  # an 0100 whose bitmap announces fields it lacks
        assert recv_message(s)["39"] == iso8583.FORMAT_ERROR
    network_management = iso8583.framed(iso8583.encode({"t": "0800", "11": "000001"}))
    for broken in (b"\x00\x00", b"\xff\xff" + b"x" * 10, network_management, b"\x00\x40" + b"0100"):
        with connect(address) as s:  # a zero or huge length, a message type not served, a message cut short
            s.sendall(broken)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b""  # closed, nothing answered
    with connect(address) as s:  # still serving
        s.sendall(iso8583.framed(iso8583.encode(good_request(3))))
        assert recv_message(s)["39"] == "00"
    assert proc.poll() is None
    text = log_text(log)
    assert "announces 0 bytes" in text and "refused message type 0800" in text
    assert "ended 4 bytes into a 64-byte message" in text
    assert "4761739001010010" not in text  # no PAN in the log


def test_pending_records_wait_for_a_host_that_is_down_and_are_decided_once_it_is_up(tmp_path, acquirer_host):
    store = registered(tmp_path)
    store.store([contactless_record(1, card_read()), contactless_record(2, card_read(cryptogram=bytes(8)))])
    down = acquirer_link.TcpLink("127.0.0.1:%d" % free_port(), timeout=1)
    result = acquirer.run_pass(store, down, open_for_test)
    assert result.error and "Connection refused" in result.error
    assert len(store.pending_records()) == 2 and store.deny_list_version() == 0
    up = acquirer_link.TcpLink(acquirer_host[0])
    result = acquirer.run_pass(store, up, open_for_test)
    up.close()
    assert (result.approved, result.declined, result.error) == (1, 1, None)
    assert store.pending_records() == [] and store.deny_list_version() == 1


def garbage_host(answer):
    """A TCP server that answers every framed message with `answer(message)` bytes (already framed)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while True:
                    header = conn.recv(2)
                    if len(header) < 2:
                        break
                    conn.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)
                    conn.sendall(answer())

    threading.Thread(target=serve, daemon=True).start()
    return server, "127.0.0.1:%d" % server.getsockname()[1]


@pytest.mark.parametrize("answer, reason", [
    (lambda: b"\x00\x05hello", "garbage reply: malformed message"),
    (lambda: iso8583.framed(iso8583.encode({"t": "0110", "11": "999999", "37": "000000000000", "39": "00"})),
     "garbage reply: answers STAN 999999"),
    (lambda: iso8583.framed(iso8583.encode({"t": "0810", "39": "00"})), "garbage reply: message type 0810"),
    (lambda: b"\x00\x00", "length header announces 0 bytes"),
])
def test_a_garbage_answer_leaves_the_record_pending_with_a_logged_reason(tmp_path, caplog, answer, reason):
    store = registered(tmp_path)
    store.store([contactless_record(1, card_read())])
    server, address = garbage_host(answer)
    caplog.set_level(logging.WARNING, logger="collector")
    try:
        assert acquirer.authorise_pending(store, acquirer_link.TcpLink(address, timeout=2), open_for_test) == (0, 0, 0)
    finally:
        server.close()
    assert len(store.pending_records()) == 1
    assert reason in caplog.text and "1 transactions stay pending" in caplog.text


def test_a_slow_host_is_a_timeout_not_a_decision(tmp_path):
    store = registered(tmp_path)
    store.store([contactless_record(1, card_read())])
    server = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    try:
        result = acquirer.run_pass(store, acquirer_link.TcpLink("127.0.0.1:%d" % server.getsockname()[1],
                                                                timeout=0.5), open_for_test)
    finally:
        server.close()
    assert "no answer" in result.error and len(store.pending_records()) == 1


def test_the_acquirer_command_asks_the_host_and_reports_what_stays_pending(tmp_path, acquirer_host):
    db = str(tmp_path / "c.db")
    store = registered(tmp_path)
    key_file, modulus = seal_key_file(tmp_path)
    store.store(sealed_records([card_read()], modulus))  # opened with --seal-key, checked by the issuer
    store.close()
    cmd = [sys.executable, "-m", "host_sim", "acquirer", "--db", db, "--seal-key", key_file, "--acquirer"]
    down = subprocess.run(cmd + ["127.0.0.1:%d" % free_port()], cwd=build.ROOT, capture_output=True, text=True)
    out = json.loads(down.stdout)
    assert down.returncode == 1 and (out["approved"], out["pending"]) == (0, 1) and "error" in out
    up = subprocess.run(cmd + [acquirer_host[0]], cwd=build.ROOT, capture_output=True, text=True)
    assert up.returncode == 0 and json.loads(up.stdout) == {"approved": 1, "declined": 0, "deny_list_version": 0,
                                                            "pending": 0}
    both = subprocess.run(cmd + [acquirer_host[0], "--rules", "r.json"], cwd=build.ROOT, capture_output=True,
                          text=True)
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1


def test_the_acquirer_command_refuses_a_bad_seal_key(tmp_path):
    db = str(tmp_path / "c.db")
    registered(tmp_path).close()
    (tmp_path / "bad.pem").write_text("not a key")
    got = subprocess.run([sys.executable, "-m", "host_sim", "acquirer", "--db", db, "--seal-key",
                          str(tmp_path / "bad.pem")], cwd=build.ROOT, capture_output=True, text=True)
    assert got.returncode == 2 and "acquirer:" in got.stderr and got.stdout == ""
