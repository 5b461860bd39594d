"""The TCP collector keeps serving under misuse: handshake and idle timeouts, keepalive, a connection
limit, a per-address handshake rate, replies a client does not read, no polling, escaped and
rate-limited logs; the serial collector reopens a device that went away and came back."""

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import tty

import pytest

from host_sim.backend import host_session, ingest, log_limit, serial_server, tcp_server
from host_sim.bench import collector_load
from protocol import frame, link, peer
from tests.host_sim.helpers import KEY, TERMINAL, registered
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def fresh_log_limit(monkeypatch):
    """A rate limit of its own per test: the process-wide one remembers other tests' lines."""
    limit, shared = log_limit.RateLimit(), log_limit.limit
    log_limit.peer_log.removeFilter(shared)
    log_limit.peer_log.addFilter(limit)
    monkeypatch.setattr(log_limit, "limit", limit)
    monkeypatch.setattr(tcp_server, "log_limit", limit)
    yield limit
    log_limit.peer_log.removeFilter(limit)
    log_limit.peer_log.addFilter(shared)


def serve(store, test, **limits):
    """Run `test(port, collector)` (a coroutine) against serve_tcp on a free loopback port."""

    async def main():
        server = await tcp_server.serve_tcp("127.0.0.1", 0, store, None, tcp_server.Limits(**limits))
        try:
            return await test(server.sockets[0].getsockname()[1], server.collector)
        finally:
            server.close()
            server.housekeeping.cancel()

    return asyncio.run(main())


async def connect(port, source="127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_within(reader, seconds):
    """True once the collector closed the connection (EOF or reset) within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await reader.read(4096) == b"":
                    return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def authenticate(port, firmware="limits test", source="127.0.0.1"):
    """A registered terminal's handshake; (reader, writer, its Peer)."""
    reader, writer = await connect(port, source)
    term = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, firmware, window=8, max_frame=256, rx_window=4)
    frames = frame.FrameReader()
    term.start(0)
    async with asyncio.timeout(5):
        while not term.up():
            p = term.poll(0)
            if p is not None:
                writer.write(link.wire(p))
                continue
            data = await reader.read(4096)
            assert data, "the collector closed a legitimate handshake"
            for q in frames.feed(data):
                term.feed(q, 0)
    return reader, writer, term


def hello(terminal=b"ZUNKNOWN"):
    return link.wire(link.encode(link.HELLO, link.hello(terminal, "x", peer.CAPS, 4, 256, bytes(16))))


def status_frame(term):
    term.send(link.STATUS, link.status(0, 0x1F, -128, 0, 0, 0, 0, 1))
    out = b""
    while True:
        p = term.poll(0)
        if p is None:
            return out
        out += link.wire(p)


def test_default_timeouts_never_cut_a_healthy_terminal():
    assert tcp_server.IDLE_TIMEOUT >= 5 * 5  # STATUS every 5 s (SPEC section 7): several may be lost
    assert tcp_server.HANDSHAKE_TIMEOUT * 1000 >= 5 * peer.HANDSHAKE_RETRY_MS


def test_a_connection_that_does_not_authenticate_in_time_is_closed_even_when_it_dribbles(tmp_path):
    async def test(port, collector):
        silent, silent_w = await connect(port)  # a writer dropped would close its connection
        dribble_r, dribble_w = await connect(port)
        t0 = time.monotonic()
        for _ in range(5):  # a slowloris: bytes of a frame that never ends
            dribble_w.write(b"\x55")
            await asyncio.sleep(0.1)
        assert await closed_within(silent, 2) and await closed_within(dribble_r, 2)
        assert time.monotonic() - t0 < 2
        _, writer, _ = await authenticate(port)  # a real terminal still gets in
        writer.close()
        silent_w.close()
        return collector.closed

    closed = serve(registered(tmp_path), test, handshake_timeout=0.4)
    assert closed["handshake_timeout"] == 2


def test_an_authenticated_link_is_closed_when_silent_and_kept_while_it_sends_heartbeats(tmp_path):
    async def test(port, collector):
        quiet, quiet_w, _ = await authenticate(port)
        beating_r, beating_w, term = await authenticate(port)
        for _ in range(8):  # 1.2 s of heartbeats, twice the idle timeout
            beating_w.write(status_frame(term))
            await asyncio.sleep(0.15)
        assert await closed_within(quiet, 0.1)
        assert not await closed_within(beating_r, 0.1)
        assert await closed_within(beating_r, 2)  # and once they stop, it goes too
        quiet_w.close()
        return collector.closed

    closed = serve(registered(tmp_path), test, idle_timeout=0.6)
    assert closed["idle_timeout"] == 2


def test_connections_beyond_the_limit_are_closed_at_once_and_counted(tmp_path, caplog):
    async def test(port, collector):
        held = [await connect(port) for _ in range(3)]
        await asyncio.sleep(0.1)
        extra = [await connect(port) for _ in range(20)]
        for reader, _ in extra:
            assert await closed_within(reader, 1)
        held[0][1].close()
        await asyncio.sleep(0.1)
        _, writer, _ = await authenticate(port)  # room again
        writer.close()
        return collector.closed

    with caplog.at_level(logging.INFO):
        closed = serve(registered(tmp_path), test, max_connections=3)
    assert closed["over_limit"] == 20
    refusals = [r for r in caplog.records if "connections open, the limit" in r.getMessage()]
    assert len(refusals) == log_limit.BURST  # logged, rate-limited


def test_accepted_sockets_have_tcp_keepalive(tmp_path, monkeypatch):
    seen = []
    original = tcp_server._keepalive

    def spy(writer):
        original(writer)
        seen.append(writer.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))

    monkeypatch.setattr(tcp_server, "_keepalive", spy)

    async def test(port, collector):
        _, writer, _ = await authenticate(port)
        writer.close()

    serve(registered(tmp_path), test)
    assert seen and all(seen)


def test_handshake_frames_beyond_the_rate_of_an_address_close_the_connection(tmp_path):
    async def test(port, collector):
        reader, writer = await connect(port, "127.0.0.3")
        writer.write(hello() * 200)  # 200 HELLOs of an unknown terminal at once
        replies = b""
        try:
            async with asyncio.timeout(2):
                while chunk := await reader.read(4096):
                    replies += chunk
        except ConnectionError:
            pass
        errors = list(frame.FrameReader().feed(replies))
        again_r, again_w = await connect(port, "127.0.0.3")  # the bucket of that address is empty
        again_w.write(hello())
        assert await closed_within(again_r, 2)
        _, other, _ = await authenticate(port, source="127.0.0.4")  # another address is not affected
        other.close()
        return collector.closed, len(errors)

    closed, answered = serve(registered(tmp_path), test, handshake_rate=1.0, handshake_burst=10)
    assert closed["rate_limited"] == 2
    assert answered <= 10


def test_a_client_that_does_not_read_its_replies_is_closed(tmp_path, monkeypatch):
    original = tcp_server._keepalive

    def small_buffers(writer):  # a kernel send buffer of a few KB: the collector's own buffer fills soon
        original(writer)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    monkeypatch.setattr(tcp_server, "_keepalive", small_buffers)

    async def test(port, collector):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        known = hello(TERMINAL)  # each answered with the collector's HELLO, which it never reads
        for _ in range(100):
            writer.write(known * 50)
            await asyncio.sleep(0.01)
            if collector.closed["not_reading"]:
                break
        writer.transport.abort()
        return collector.closed

    closed = serve(registered(tmp_path), test, max_buffer=2000, handshake_rate=1e9, handshake_burst=1e9)
    assert closed["not_reading"] == 1


def test_idle_connections_are_not_polled(tmp_path, monkeypatch):
    calls = []
    original = host_session.Session.receive

    def counting(self, data=b""):
        calls.append(bool(data))
        return original(self, data)

    monkeypatch.setattr(host_session.Session, "receive", counting)

    async def test(port, collector):
        idle = [await connect(port) for _ in range(50)]
        reader, writer, _ = await authenticate(port)  # the reader kept: dropped, it would close
        del calls[:]
        await asyncio.sleep(1.0)
        writer.close()
        return idle

    serve(registered(tmp_path), test)
    assert len(calls) <= 2  # a 0.1 s poll made 10 calls per connection per second


def test_peer_text_is_escaped_in_the_log(tmp_path, caplog):
    forged = "x\n2026-01-01 00:00:00 collector terminal 00 authenticated\x1b[2J\r"

    async def test(port, collector):
        reader, writer = await connect(port)  # both kept: a stream dropped closes its connection
        writer.write(link.wire(link.encode(link.ERROR, link.error(1, forged))))
        await asyncio.sleep(0.2)
        writer.close()
        reader, writer, term = await authenticate(port, firmware=forged)
        term.error(2, forged)
        writer.write(link.wire(term.poll(0)))
        await asyncio.sleep(0.2)
        writer.close()

    with caplog.at_level(logging.INFO):
        serve(registered(tmp_path), test)
    lines = [r.getMessage() for r in caplog.records]
    peer_text = [line for line in lines if "2026-01-01" in line]
    assert len(peer_text) == 3  # the clear ERROR, the firmware name, the secured ERROR
    for line in lines:
        assert line.isprintable(), line


def test_a_hello_flood_writes_a_few_log_lines_and_a_summary(tmp_path, caplog, fresh_log_limit):
    async def test(port, collector):
        for i in range(40):
            reader, writer = await connect(port, "127.0.1.%d" % (i + 1))
            writer.write(hello() * 100)
            await closed_within(reader, 2)
        fresh_log_limit.flush(force=True)

    with caplog.at_level(logging.INFO):
        serve(registered(tmp_path), test, handshake_burst=50)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) < 30
    summary = [line for line in lines if "refused: %s %s" in line]
    assert summary and int(summary[0].split()[0]) >= 40 * 50 - log_limit.BURST - 5


def test_rate_limit_passes_a_few_lines_per_kind_and_sums_up_the_rest():
    now = [0.0]
    limit = log_limit.RateLimit(burst=3, interval=10, clock=lambda: now[0], summary="test.summary")
    records = [logging.LogRecord("x", logging.INFO, "", 0, "line %d", (i,), None) for i in range(100)]
    other = logging.LogRecord("x", logging.INFO, "", 0, "other", (), None)
    assert [limit.filter(r) for r in records[:5]] == [True, True, True, False, False]
    assert limit.filter(other)
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logging.getLogger("test.summary").addHandler(handler)
    try:
        for r in records[5:]:
            limit.filter(r)
        assert seen == []
        now[0] = 10.5
        assert limit.filter(records[0])  # a new interval
        assert [s.getMessage() for s in seen] == ["97 more lines like 'line %d' in 10 s, not logged"]
    finally:
        logging.getLogger("test.summary").removeHandler(handler)


def test_shown_escapes_control_characters():
    assert log_limit.shown("a\nb\r\x1b\x00\u2028") == "a\\nb\\r\\x1b\\x00\\u2028"
    assert log_limit.shown(b"fw\n\xff") == "fw\\n\\ufffd"


def test_under_load_handshakes_pass_the_acquirer_writes_and_a_flood_barely_logs(tmp_path):
    result = collector_load.run_load(str(tmp_path / "c.db"), idle=200, slowloris=50, non_reading=10,
                                     handshakes=10, hellos=10000, cpu_seconds=1.0)
    assert result["collector_alive"]
    assert result["handshake_ms_loaded"]["failed"] == 0
    assert result["handshake_ms_loaded"]["median"] < 250  # milliseconds (it was 700 ms with 10 non-readers)
    assert result["acquirer"]["exit"] == 0, result["acquirer"]  # was "database is locked"
    assert result["idle_still_connected"] == 200
    assert result["records_stored"] > 0 and result["non_reading_records_sent"] > 0
    assert result["flood"]["hellos"] == 10000 and result["flood"]["log_bytes"] < 5000


def test_a_lost_serial_device_is_served_again_when_it_comes_back(tmp_path, caplog):
    path = str(tmp_path / "ttyTERMINAL")
    store = registered(tmp_path)

    def plug():
        master, slave = os.openpty()
        tty.setraw(slave)
        os.symlink(os.ttyname(slave), path)
        return master, slave

    def handshake(master):
        term = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "serial test", window=8, max_frame=256, rx_window=4)
        frames = frame.FrameReader()
        os.set_blocking(master, False)
        term.start(int(time.monotonic() * 1000))
        deadline = time.monotonic() + 10
        while not term.up():
            assert time.monotonic() < deadline, "no handshake over the pty"
            now = int(time.monotonic() * 1000)
            p = term.poll(now)
            if p is not None:
                os.write(master, link.wire(p))
                continue
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            for q in frames.feed(data):
                term.feed(q, now)

    master, slave = plug()
    stop = threading.Event()
    with caplog.at_level(logging.INFO, logger="collector"):
        server = threading.Thread(target=serial_server.serve_serial, args=(path, store, stop),
                                  kwargs={"reopen": 0.05}, daemon=True)
        server.start()
        try:
            handshake(master)
            os.close(master)  # the device goes away
            os.close(slave)
            os.unlink(path)
            wait_until(lambda: any("lost" in r.getMessage() for r in caplog.records), what="the loss logged")
            time.sleep(0.3)  # polled for a while
            master, slave = plug()  # and comes back
            handshake(master)
        finally:
            stop.set()
            server.join(5)
            os.close(master)
            os.close(slave)
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if " lost (" in line]) == 1
    assert len([line for line in lines if "is back" in line]) == 1
    assert store.query("SELECT count(*) FROM terminals") == [(1,)]



def test_collector_limit_flags_have_defaults_and_refuse_nonsense(capsys):
    import argparse

    from host_sim.backend import collector

    parser = argparse.ArgumentParser()
    collector.add_arguments(parser)
    args = parser.parse_args(["--db", "x.db"])
    assert (args.max_connections, args.handshake_timeout, args.idle_timeout) == (
        tcp_server.MAX_CONNECTIONS, tcp_server.HANDSHAKE_TIMEOUT, tcp_server.IDLE_TIMEOUT)
    args = parser.parse_args(["--db", "x.db", "--max-connections", "10", "--idle-timeout", "90.5"])
    assert (args.max_connections, args.idle_timeout) == (10, 90.5)
    for wrong in (["--max-connections", "0"], ["--handshake-timeout", "soon"], ["--idle-timeout", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--db", "x.db"] + wrong)
        assert "is not a positive number" in capsys.readouterr().err


def test_group_commits_are_bounded_and_a_long_one_is_followed_by_a_pause():
    class Store:
        """Records each group's input and start; each holds the 'write lock' for 20 ms."""

        def __init__(self):
            self.groups, self.starts = [], []

        @contextlib.contextmanager
        def group(self):
            self.groups.append(0)
            self.starts.append(time.monotonic())
            yield self
            time.sleep(0.02)

    class Link:
        def __init__(self, store):
            self.store = store

        def receive(self, data):
            self.store.groups[-1] += len(data)
            return b"ok"

    store = Store()

    async def main():
        committer = ingest.GroupCommitter(store)
        replies = [committer.receive(Link(store), bytes(ingest.GROUP_BYTES // 2)) for _ in range(8)]
        return [await r for r in replies]

    assert asyncio.run(main()) == [b"ok"] * 8
    assert store.groups == [ingest.GROUP_BYTES] * 4  # never more than GROUP_BYTES per group
    gaps = [b - a for a, b in zip(store.starts, store.starts[1:])]
    assert min(gaps) >= 0.02 * (1 + ingest.PAUSE_SHARE) * 0.9  # the lock held, then left free a while


def test_the_collector_closes_after_error_4_and_after_bye(tmp_path):
    async def test(port, collector):
        reader, writer = await connect(port)
        writer.write(hello())  # an unknown terminal: ERROR 4, then the collector closes
        got = b""
        async with asyncio.timeout(2):
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                got += data
        codes = [link.decode(p)["code"] for p in frame.FrameReader().feed(got)]
        writer.close()
        bye_r, bye_w, term = await authenticate(port)
        term.bye()
        bye_w.write(link.wire(term.poll(0)))
        closed = await closed_within(bye_r, 2)
        bye_w.close()
        return codes, closed

    codes, closed = serve(registered(tmp_path), test)
    assert codes == [link.E_UNKNOWN_TERMINAL] and closed
