"""The collector's protocol session: stores exactly once, acknowledges after commit, refuses garbage."""

import socket
import sqlite3
import subprocess
import sys
import time

from hypothesis import given
from hypothesis import strategies as st

from host_sim import build, collector
from protocol import frame, messages, record

ROOT = build.ROOT
TERMINAL = b"VB\x00\x00\x01\x00\x00\x00"


def rec(seq, atc=b"\x00\x01"):
    return record.encode(TERMINAL, seq, 1_800_000_000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                         bytes(range(16)), [(record.EXT_ATC, atc)])


def replies(data):
    reader = frame.FrameReader()
    return [messages.parse(p) for p in reader.feed(data)]


def test_batch_is_stored_once_and_acknowledged_after_commit(tmp_path):
    store = collector.Store(str(tmp_path / "c.db"))
    s = collector.Session(store)
    assert s.receive(frame.encode(messages.hello(TERMINAL, "micropython 1.29.0 linux"))) == b""
    out = s.receive(frame.encode(messages.records([rec(1), rec(2), rec(3)])))
    assert replies(out) == [(messages.ACK, 3)]
    # A second database connection sees the records: the ACK came after the commit.
    other = sqlite3.connect(str(tmp_path / "c.db"))
    assert [r[0] for r in other.execute("SELECT seq FROM records ORDER BY seq")] == [1, 2, 3]
    assert other.execute("SELECT runtime FROM terminals").fetchall() == [("micropython 1.29.0 linux",)]
    # The terminal missed the ACK and sends the batch again: acknowledged again, stored once.
    out = s.receive(frame.encode(messages.records([rec(2), rec(3), rec(4)])))
    assert replies(out) == [(messages.ACK, 4)]
    assert [r[0] for r in other.execute("SELECT seq FROM records ORDER BY seq")] == [1, 2, 3, 4]
    assert (s.stored, s.duplicate_receipts) == (4, 2)


def test_malformed_batch_is_refused_whole(tmp_path):
    store = collector.Store(str(tmp_path / "c.db"))
    s = collector.Session(store)
    bad = rec(2)[:30]  # truncated record inside an otherwise good batch
    out = s.receive(frame.encode(messages.records([rec(1), bad])))
    assert out == b""
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]
    assert s.refused == 1


@given(st.binary(max_size=600))
def test_random_bytes_never_crash_or_store(data):
    store = collector.Store(":memory:")
    s = collector.Session(store)
    out = s.receive(data)
    # Random input may contain a frame with a valid CRC only by a 2^-32 accident; nothing is stored.
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]
    assert out == b""


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=4))
def test_framed_garbage_payloads_are_refused_not_raised(payloads):
    store = collector.Store(":memory:")
    s = collector.Session(store)
    s.receive(b"".join(frame.encode(p) for p in payloads))
    expected_refused = 0
    for p in payloads:
        try:
            kind, body = messages.parse(p)
            if kind == messages.RECORDS:
                for r in body:
                    record.decode(r)
            elif kind != messages.HELLO:  # a terminal never sends ACK
                expected_refused += 1
        except (messages.MessageError, record.RecordError, UnicodeError):
            expected_refused += 1
    assert s.refused == expected_refused


def test_collector_command_serves_tcp(tmp_path):
    db = str(tmp_path / "c.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                             "127.0.0.1:%d" % port], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "collector did not listen"
                time.sleep(0.1)
        with conn:
            conn.sendall(frame.encode(messages.records([rec(7)])))
            reader = frame.FrameReader()
            got = []
            while not got:
                got = reader.feed(conn.recv(512))
        assert messages.parse(got[0]) == (messages.ACK, 7)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert sqlite3.connect(db).execute("SELECT seq FROM records").fetchall() == [(7,)]
