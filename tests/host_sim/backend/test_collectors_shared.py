"""Several collector processes on one PostgreSQL database: a terminal that reconnects to another one
resumes where it was, killing one mid-batch loses nothing, and a database that restarts under them
stops acknowledgements without closing links, then ingest resumes with nothing lost or stored twice."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from host_sim.backend import sqldb
from host_sim.backend.store import Store
from host_sim.bench import collector as bench_collector
from host_sim.tools import build
from host_sim.tools import pg_server as server_tool
from tests.host_sim.databases import require
from tests.host_sim.helpers import free_port
from tests.waiting import wait_until

RECORDS = 240  # per terminal


def start(db, port, log_path, *extra):
    """A `collector --listen` process; returns it once `port` accepts connections."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                                 "127.0.0.1:%d" % port, *extra], cwd=build.ROOT, stdout=log, stderr=log)

    def listening():
        assert proc.poll() is None, "the collector exited: %s" % open(log_path).read()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, timeout=30, interval=0.1, what="the collector to listen")
    return proc


class Uploader:
    """A terminal that uploads RECORDS records, reconnecting (to the next port in turn) whenever its
    link ends, and sending again from its newest acknowledged record, as firmware/uplink.py does."""

    def __init__(self, index, ports, window=2):
        self.index, self.ports, self.window = index, ports, window
        self.acked = 0
        self.links = 0
        self.term = None

    def new_terminal(self):
        term = bench_collector.Terminal(self.index, RECORDS, self.window, 256)
        term.queued = self.acked  # what was acknowledged is freed from the journal
        return term

    def run(self, until):
        while self.acked < RECORDS and time.monotonic() < until:
            port = self.ports[self.links % len(self.ports)]
            self.links += 1
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            self.term = self.new_terminal()
            with sock:
                self._link(sock, self.term, until)

    def _link(self, sock, term, until):
        sock.settimeout(0.2)
        while not term.done() and time.monotonic() < until:
            term.fill()
            try:
                if term.outbox:
                    sock.sendall(bytes(term.outbox))
                    term.outbox.clear()
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            term.feed(data)
            self.acked = max(self.acked, term.peer.sender.delivered_tag)


def registered_fleet(db, count):
    store = Store(db)
    for i in range(count):
        t = bench_collector.Terminal(i, 1, 2, 256)
        store.register(t.ident.hex(), t.key)
    store.close()


def stored(db):
    con = sqldb.connect(db)
    try:
        return (con.execute("SELECT count(*), count(DISTINCT (terminal, seq)) FROM records").fetchone(),
                con.execute("SELECT count(*) FROM conflicts").fetchone()[0],
                con.execute("SELECT count(*) FROM refused").fetchone()[0])
    finally:
        con.close()


def test_killing_one_of_three_collectors_mid_batch_loses_nothing(pg_db, tmp_path):
    registered_fleet(pg_db, 3)
    ports = [free_port() for _ in range(3)]
    log = str(tmp_path / "collectors.log")
    # The first dies right after its fourth commit, before acknowledging it; the second is killed below.
    procs = [start(pg_db, ports[0], log, "--crash-after-commits", "4"), start(pg_db, ports[1], log),
             start(pg_db, ports[2], log)]
    uploaders = [Uploader(i, ports[i:] + ports[:i]) for i in range(3)]
    until = time.monotonic() + 120
    threads = [threading.Thread(target=u.run, args=(until,)) for u in uploaders]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: uploaders[1].acked >= 40, timeout=60, interval=0.01, what="terminal 1 to upload")
        procs[1].send_signal(signal.SIGKILL)  # mid-batch: terminal 1 has more frames in flight
        for t in threads:
            t.join(timeout=130)
        assert procs[0].wait(timeout=10) == -signal.SIGKILL  # the fault injection fired
        assert procs[1].wait(timeout=10) == -signal.SIGKILL
        assert procs[2].poll() is None
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=20)
    assert [u.acked for u in uploaders] == [RECORDS] * 3
    assert uploaders[0].links >= 2 and uploaders[1].links >= 2  # both resumed on another collector
    assert stored(pg_db) == ((3 * RECORDS, 3 * RECORDS), 0, 0)  # nothing lost, nothing twice, no conflict


def test_three_collectors_share_one_port(pg_db, tmp_path):
    registered_fleet(pg_db, 6)
    port = free_port()
    log = str(tmp_path / "collectors.log")
    procs = [start(pg_db, port, log, "--reuse-port") for _ in range(3)]
    uploaders = [Uploader(i, [port], window=8) for i in range(6)]
    until = time.monotonic() + 120
    threads = [threading.Thread(target=u.run, args=(until,)) for u in uploaders]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=130)
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
    assert [u.acked for u in uploaders] == [RECORDS] * 6
    assert stored(pg_db) == ((6 * RECORDS, 6 * RECORDS), 0, 0)


def test_a_restarting_database_holds_acknowledgements_keeps_links_and_loses_nothing(pg_server, pg_db, tmp_path):
    require(pg_server)
    if pg_server.folder is None:
        pytest.skip("the server is not this session's own ($ZHIFU_PG_URL): it cannot be restarted")
    registered_fleet(pg_db, 1)
    port = free_port()
    proc = start(pg_db, port, str(tmp_path / "collector.log"))
    up = Uploader(0, [port], window=4)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        term = up.term = up.new_terminal()
        term.records = term.records[:RECORDS // 2]  # the first half, acknowledged before the restart
        up._link(sock, term, time.monotonic() + 60)
        assert term.done()
        server_port = int(open(os.path.join(pg_server.folder, "port")).read())
        server_tool.stop(pg_server.folder)
        try:
            term.records = bench_collector.Terminal(0, RECORDS, 4, 256).records  # the second half is journalled
            term.fill()
            sock.sendall(bytes(term.outbox))
            term.outbox.clear()
            sock.settimeout(3.0)
            with pytest.raises(socket.timeout):  # no ACK while the database is down, and the link stays open
                data = sock.recv(65536)
                term.feed(data)
                assert term.peer.sender.delivered_tag == RECORDS // 2, "acknowledged while the database was down"
                sock.recv(65536)
        finally:
            server_tool.start(pg_server.folder, server_port, durable=False)
        assert proc.poll() is None
        up._link(sock, term, time.monotonic() + 60)  # the same link: it resumes once the database is back
        assert term.done(), "the link ended before its records were acknowledged"
        assert up.links == 0
        sock.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert stored(pg_db) == ((RECORDS, RECORDS), 0, 0)
