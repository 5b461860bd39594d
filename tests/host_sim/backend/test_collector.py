"""The collector's protocol session: authenticates terminals, stores exactly once, acknowledges after
commit, refuses unknown terminals, bad keys, altered, replayed and malformed frames."""

from hypothesis import given
from hypothesis import strategies as st

from host_sim.backend import host_session, sqldb
from host_sim.backend.store import Store
from protocol import frame, link, peer, record
from tests.host_sim.helpers import KEY, TERMINAL, Terminal, free_port, registered, start_collector

TOKEN = bytes.fromhex("c0ffee00112233445566778899aabbcc")


def rec(seq, atc=b"\x00\x01", terminal=TERMINAL):
    return record.encode(terminal, seq, 1_800_000_000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                         TOKEN, [(record.EXT_ATC, atc)])


def test_batch_is_stored_once_and_acknowledged_after_commit(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    assert t.peer.up() and s.terminal == TERMINAL.hex()
    t.upload([rec(1), rec(2), rec(3)])
    assert t.peer.sender.delivered_tag == 3
    # A second database connection sees the records: the ACK came after the commit.
    other = sqldb.connect(db)
    assert [r[0] for r in other.execute("SELECT seq FROM records ORDER BY seq")] == [1, 2, 3]
    assert other.execute("SELECT runtime FROM terminals").fetchall() == [("micropython 1.29.0 linux",)]
    # After a reboot the terminal sends records again that the collector has: stored once.
    t2 = Terminal(host_session.Session(store)).pump()
    t2.upload([rec(2), rec(3), rec(4)])
    assert t2.peer.sender.delivered_tag == 4
    assert [r[0] for r in other.execute("SELECT seq FROM records ORDER BY seq")] == [1, 2, 3, 4]
    assert (t2.session.stored, t2.session.duplicate_receipts) == (1, 2)


def test_a_maximum_size_record_fits_the_frame_the_firmware_announces(db):
    from firmware import uplink  # only its constants: the module imports on CPython

    big = record.encode(TERMINAL, 9, 1_800_000_000, record.KIND_EMV_CONTACTLESS, 200, 156, record.ACCEPTED, 0, 1,
                        TOKEN, [(16, bytes(range(209)))])
    assert len(big) == record.MAX_SIZE
    store = registered(db=db)
    t = Terminal(host_session.Session(store), max_frame=uplink.MAX_FRAME).pump()
    full = record.encode(TERMINAL, 10, 1, 1, 1, 156, 1, 0, 1, TOKEN, [(16, bytes(209))])
    t.peer.send(link.RECORDS, link.records([full]), 10)  # mode 0: the largest body there is
    t.upload([big])
    assert t.peer.sender.delivered_tag == 9
    assert sorted(r[0] for r in store.query("SELECT seq FROM records")) == [9, 10]


def test_unknown_terminal_is_refused_and_nothing_stored():
    store = Store(":memory:")
    s = host_session.Session(store)
    t = Terminal(s).pump()
    assert not t.peer.up() and t.errors == [link.E_UNKNOWN_TERMINAL]
    assert s.refused == 1 and store.query("SELECT COUNT(*) FROM records") == [(0,)]


def test_wrong_key_is_refused_and_nothing_stored():
    store = registered()
    s = host_session.Session(store)
    t = Terminal(s, key=bytes(32)).pump()
    assert not t.peer.up() and t.errors == [link.E_AUTH_FAILED]
    assert s.terminal is None and s.refused == 1


def test_the_uplink_capture_shows_no_record_field_in_clear(db):
    store = registered(db=db)
    t = Terminal(host_session.Session(store)).pump()
    t.upload([rec(i, atc=bytes([0x7E, i])) for i in range(1, 5)])
    t.upload([rec(i, atc=bytes([0x7E, i])) for i in range(5, 9)])
    assert t.peer.sender.delivered_tag == 8
    capture = bytes(t.wire)
    assert TOKEN not in capture and TOKEN[:6] not in capture
    assert (1_800_000_000).to_bytes(4, "little") not in capture
    for i in range(1, 9):
        assert bytes([record.EXT_ATC, 2, 0x7E, i]) not in capture
    assert store.query("SELECT COUNT(*) FROM records") == [(8,)]


def test_altered_or_replayed_frames_are_dropped_counted_and_never_stored(db):
    store = registered(db=db)
    s = host_session.Session(store)
    t = Terminal(s).pump()
    data = link.wire(link.encode(link.RECORDS, link.records([rec(1)], TERMINAL), 1, 0, None, link.FLAG_SEQ))
    sealed = link.wire(t.peer.session.seal(frame.FrameReader().feed(data)[0]))
    for i in range(1, len(sealed) - 1):  # any byte of the frame (not the delimiters), re-framed or not
        bad = bytearray(sealed)
        bad[i] ^= 0x24
        s.receive(bytes(bad))
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]
    s.receive(sealed)
    assert store.query("SELECT COUNT(*) FROM records") == [(1,)]
    s.receive(sealed)  # replayed: same counter
    assert s.peer.errors["replay"] == 1 and store.query("SELECT COUNT(*) FROM records") == [(1,)]
    assert s.peer.errors["mac"] + s.frames.errors >= len(sealed) - 2


@given(st.binary(max_size=600))
def test_random_bytes_never_crash_or_store(data):
    store = registered()
    s = host_session.Session(store)
    s.receive(data)
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=4))
def test_framed_garbage_payloads_are_dropped_not_raised(payloads):
    store = registered()
    s = host_session.Session(store)
    out = s.receive(b"".join(link.wire(bytes([1]) + p) for p in payloads))
    assert store.query("SELECT COUNT(*) FROM records") == [(0,)]
    assert s.terminal is None
    for reply in frame.FrameReader().feed(out):  # at most handshake answers or ERRORs, in the clear
        assert link.decode(reply)["type"] in ("HELLO", "ERROR")


def tcp_upload(conn, seqs):
    """Authenticate over `conn` and upload records `seqs` in one frame; True once they are acknowledged,
    False when the collector closed the connection first."""
    with conn:
        t = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "tcp test", window=8, max_frame=256, rx_window=4)
        reader = frame.FrameReader()
        t.start(0)
        sent = False
        while t.sender.delivered_tag != seqs[-1]:
            if t.up() and not sent:
                t.send(link.RECORDS, link.records([rec(s) for s in seqs], TERMINAL), seqs[-1])
                sent = True
            p = t.poll(0)
            if p is not None:
                conn.sendall(link.wire(p))
                continue
            try:
                data = conn.recv(512)
            except ConnectionResetError:
                return False
            if not data:
                return False
            for q in reader.feed(data):
                t.feed(q, 0)
    return True


def test_collector_command_serves_tcp(db):
    registered(db=db).close()
    proc, conn = start_collector(db, free_port())
    try:
        assert tcp_upload(conn, [7])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert sqldb.connect(db).execute("SELECT seq FROM records").fetchall() == [(7,)]


def test_a_collector_killed_between_commit_and_ack_loses_nothing_and_stores_nothing_twice(db):
    registered(db=db).close()
    port = free_port()
    proc, conn = start_collector(db, port, "--crash-after-commits", "1")
    try:
        assert not tcp_upload(conn, [1, 2, 3]), "acknowledged although the collector died before the ACK"
        assert proc.wait(timeout=10) == -9
        # committed before it died: the records are there, yet the terminal still holds them unacknowledged
        assert sqldb.connect(db).execute("SELECT seq FROM records ORDER BY seq").fetchall() == [(1,), (2,), (3,)]
        proc, conn = start_collector(db, port)
        assert tcp_upload(conn, [1, 2, 3])  # the terminal sends the same batch again
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert sqldb.connect(db).execute("SELECT seq FROM records ORDER BY seq").fetchall() == [(1,), (2,), (3,)]
