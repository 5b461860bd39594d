"""firmware/console.py and console_shell.py on MicroPython, against a stand-in terminal: login by certificate
and challenge, what wrong keys, replays, roles, lockouts and bad lines get, and the commands' JSON.  On a
running board with the host client: tests/vboard/test_console_login.py."""

import functools
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim.tools import tickets
from protocol import fleet, techcert

NOW = 1_800_000_000
TERMINAL = bytes.fromhex("5642000001000000")
CHALLENGE = bytes(range(16))  # the stand-in's random source gives this challenge


@functools.cache
def keys():
    return {"authority": tickets.generate_key(), "stranger": tickets.generate_key(), "alice": tickets.generate_key(),
            "bob": tickets.generate_key()}


def cert(name, role=techcert.ROLE_TECHNICIAN, signer="authority", expires=NOW + 86400):
    k = keys()
    body = techcert.body(1, role, NOW - 100, expires, name, k[name].public_key().public_numbers().n)
    return body + k[signer].sign(body, padding.PKCS1v15(), hashes.SHA256())


def login(name, **kw):
    import base64

    return "login " + base64.b64encode(cert(name, **kw)).decode()


def auth(name, challenge=CHALLENGE):
    sig = keys()[name].sign(techcert.challenge_message(TERMINAL, challenge), padding.PKCS1v15(), hashes.SHA256())
    return "auth " + sig.hex()


def config_keys():
    return tickets.keyring_line(keys()["authority"], fleet.AUTHORITY, 1) + "\n"


# --- body ----------------------------------------------------------------------------------------


def body_session(root, config_keys, console_json, steps, now, terminal):
    """Run console lines (or "#reboot": a new Console on the same flash, "#stale": the session idle for an
    hour, "#later N": the clock N s on); the replies of each, and the log's lines."""
    import asyncio
    import os
    import time

    from firmware import console_shell, eventlog

    for d in ("/keys", "/config"):
        try:
            os.mkdir(root + d)
        except OSError:
            pass
    with open(root + "/keys/config", "w") as f:
        f.write(config_keys)
    if console_json:
        with open(root + "/config/console.json", "w") as f:
            f.write(console_json)
    clock = [now]

    class Obj:
        pass

    t = Obj()
    t.root = root
    t.terminal = terminal
    t.board = Obj()
    t.board.time_s = lambda: clock[0]
    t.board.runtime = lambda: "micropython test"
    t.board.NAME = "standin"
    j = t.journal = Obj()
    j.depth = lambda: 3
    j.next_seq, j.free, j.full, j.damaged, j.dropped = 10, 4096, False, 1, 0
    up = t.uplink = Obj()
    up.house, up.transport, up.peer, up.wake = None, None, None, asyncio.Event()
    t.health = Obj()
    t.health.bits = 8
    t.decider = Obj()
    t.decider.active = Obj()
    t.decider.active.keyring = Obj()
    t.decider.active.keyring.keys = {}
    t.decider.active.fares = {1: 200}
    t.decider.active.token_key = (3, bytes(32))
    t.deny = Obj()
    t.deny.version, t.deny.count = 7, 1
    t.deny.contains = lambda token: token == bytes(range(16))

    log = eventlog.EventLog(root, lambda: clock[0])
    eventlog.capture(log)

    def fresh():
        c = console_shell.Shell(t, lambda line: None, time.ticks_ms())
        c.random = lambda n: bytes(range(n))
        return c

    c = fresh()
    out = []
    try:
        for step in steps:
            if step == "#reboot":
                c = fresh()
                out.append(None)
            elif step == "#stale":
                c._last = time.ticks_add(time.ticks_ms(), -3600 * 1000)
                out.append(None)
            elif step.startswith("#later "):
                clock[0] += int(step.split()[1])
                out.append(None)
            else:
                out.append(asyncio.run(c.handle(step)))
    finally:
        import builtins

        builtins.print = eventlog._print
        eventlog._log = None
    return out, log.tail(100)


def body_reader(chunks):
    """Feed raw bytes to the console's reader task; the replies it wrote."""
    import asyncio
    import io

    from firmware import console

    class Obj:
        pass

    t = Obj()
    t.root = "/nonexistent"
    t.board = Obj()
    t.board.time_s = lambda: 0
    written = []

    class Stream(io.IOBase):
        def __init__(self, data):
            self.data = data

        def read(self, n=-1):
            if not self.data:
                return b""
            b, self.data = self.data[:1], self.data[1:]
            return b

        def readinto(self, buf):
            b = self.read(1)
            buf[0:1] = b
            return len(b)

        def ioctl(self, req, arg):
            return 1 if req == 3 else 0  # MP_STREAM_POLL: always readable

    async def main():
        c = console.Console(t, write=written.append)
        task = asyncio.create_task(c.run(Stream(b"".join(chunks))))
        await asyncio.sleep_ms(400)
        task.cancel()

    asyncio.run(main())
    return written


# --- tests ----------------------------------------------------------------------------------------------


@pytest.fixture
def mp(runtime):
    if runtime.name != "micropython":
        pytest.skip("device code (asyncio, ticks): runs on MicroPython")
    return runtime


def run(mp, tmp_path, steps, console_json=None):
    return mp.run(body_session, str(tmp_path), config_keys(), console_json, steps, NOW, TERMINAL)


def test_a_technician_logs_in_and_gets_the_status_json(mp, tmp_path):
    out, log = run(mp, tmp_path, ["status", login("alice"), auth("alice"), "status", "queue", "time",
                                  "deny check " + bytes(range(16)).hex(), "deny check 6212345678901234",
                                  "log 3", "nonsense", "upload now", "logout", "status"])
    assert out[0] == ["@err log in first (login, auth)"]
    assert out[1] == ["@ challenge %s %s" % (CHALLENGE.hex(), TERMINAL.hex()), "@ok"]
    assert out[2] == ["@ok alice technician, session 300 s"]
    status = json.loads(out[3][0][2:])
    assert out[3][1] == "@ok"
    assert status["terminal"] == TERMINAL.hex() and status["queue"] == 3 and status["damaged"] == 1
    assert status["clock"] == NOW and status["health_bits"] == ["journal", "config", "scanner"]
    assert status["config"]["deny_version"] == 7 and status["config"]["token_key"] == 3
    assert {"heap_free", "heap_used", "uptime_s", "quarantined", "log"} <= set(status)
    assert json.loads(out[4][0][2:])["next_seq"] == 10
    assert json.loads(out[5][0][2:])["time_s"] == NOW
    assert json.loads(out[6][0][2:]) == {"token": "00010203..", "listed": True, "deny_version": 7}
    assert out[7] == ["@err deny check wants a token: 32 hex digits"]
    assert out[8][-1] == "@ok 3 lines" and len(out[8]) == 4
    assert out[9] == ["@err unknown command nonsense (try help)"]
    assert out[10][0].startswith("@ok upload requested, 3 records waiting, link down")
    assert out[11] == ["@ok bye"]
    assert out[12] == ["@err log in first (login, auth)"]
    text = "\n".join(log)
    assert "S console: alice logged in (technician)" in text
    assert "I console: alice: status" in text
    assert "I console: alice: deny check 00010203.." in text  # tokens shortened in the log
    assert bytes(range(16)).hex() not in text and "6212345678901234" not in text


def test_wrong_keys_are_refused_and_lock_the_console_out_with_backoff(mp, tmp_path):
    steps = [login("alice", signer="stranger"), login("alice"), auth("bob"), login("alice", expires=NOW - 1),
             login("alice"), auth("alice"),  # the right key, during the lockout
             "#reboot", login("alice"),  # a reboot does not lift it
             "#later 61", login("alice"), auth("alice"),
             login("bob"), "auth 00", login("bob"), "auth zz",
             login("bob"), auth("alice"), "#later 61", login("alice"),  # second lockout: 120 s
             "#later 60", login("alice"), auth("alice")]
    out, log = run(mp, tmp_path, steps)
    assert out[0] == ["@err certificate refused: bad signature on certificate (config key 1)"]
    assert out[2] == ["@err wrong response for alice"]
    assert out[3] == ["@err certificate refused: certificate expired; 3 failed logins: locked for 60 s"]
    assert out[4] == ["@err locked after failed logins: try again in 60 s"]
    assert out[5] == ["@err locked after failed logins: try again in 60 s"]
    assert out[7][0].startswith("@err locked")
    assert out[10] == ["@ok alice technician, session 300 s"]
    assert out[12] == ["@err wrong response for bob"]
    assert out[14] == ["@err wrong response for bob"]
    assert out[16] == ["@err wrong response for bob; 3 failed logins: locked for 120 s"]
    assert out[18][0].startswith("@err locked after failed logins: try again in 59 s")
    assert out[21] == ["@ok alice technician, session 300 s"]
    assert sum("locked for" in line for line in log) >= 2


def test_a_replayed_response_and_a_stale_session_are_refused(mp, tmp_path):
    out, _ = run(mp, tmp_path, [login("alice"), auth("alice"), "logout", auth("alice"),  # replay, no challenge
                                login("alice"), auth("alice", challenge=bytes(16)),  # an old challenge's answer
                                login("alice"), auth("alice"), "#stale", "status"],
                 console_json='{"max_tries": 5}')
    assert out[3] == ["@err no challenge pending: send login first"]
    assert out[5] == ["@err wrong response for alice"]
    assert out[7][0].startswith("@ok alice")
    assert out[9] == ["@err session timed out after 300 s: log in again"]


def test_a_viewer_reads_but_cannot_reboot_or_enter_service_mode(mp, tmp_path):
    out, log = run(mp, tmp_path, [login("bob", role=techcert.ROLE_VIEWER), auth("bob"), "reboot", "service",
                                  "upload now", "config"])
    assert out[1] == ["@ok bob viewer, session 300 s"]
    assert out[2] == ["@err reboot needs the technician role"]
    assert out[3] == ["@err service needs the technician role"]
    assert out[4] == ["@err upload needs the technician role"]
    assert json.loads(out[5][0][2:])["console"] == {"max_tries": 3, "lockout_s": 60, "session_s": 300}
    assert any("S console: bob refused service" in line for line in log)


def test_the_configured_number_of_tries_locks(mp, tmp_path):
    out, _ = run(mp, tmp_path, [login("alice", signer="stranger")] * 2,
                 console_json='{"max_tries": 2, "lockout_s": 30}')
    assert out[1] == ["@err certificate refused: bad signature on certificate (config key 1); "
                      "2 failed logins: locked for 30 s"]


def test_over_long_binary_and_cut_lines_get_a_reason(mp):
    got = mp.run(body_reader, [b"help\n", b"x" * 1200 + b"\n", b"st\x00tus\n", b"\r\n", b"status\n"])
    assert got[0] == "@ status"
    assert "@err line too long (at most 1100 bytes)" in got
    assert "@err binary input refused (printable ASCII lines only)" in got
    assert got[-1] == "@err log in first (login, auth)"
