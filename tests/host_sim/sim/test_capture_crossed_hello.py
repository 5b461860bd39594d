"""A capture where the terminal's new HELLO crosses its session being authenticated (a jump of the
simulated clock times out the handshake the terminal is finishing): the host answers both, the terminal
goes on in the first session, and the capture still yields every record it sent."""

from host_sim.backend.host_session import Session
from host_sim.sim import capture
from protocol import link, peer, record
from tests.host_sim.helpers import GOOD, KEY, TERMINAL, Terminal, registered, tap_record


def test_records_of_a_session_whose_handshake_a_second_hello_crossed_are_decoded(tmp_path):
    store = registered()
    host = Session(store)
    path = str(tmp_path / "crossed.zfcap")
    w = capture.Writer(path, "serial test", clock=lambda: 0)
    t = Terminal(host)

    def say(p):
        data = link.wire(p)
        w.write(capture.TERMINAL, data)
        return data

    reply = host.receive(say(t.peer.poll(0)))  # HELLO a, the host's HELLO
    w.write(capture.HOST, reply)
    t._feed(reply)
    auth = host.receive(say(t.peer.poll(0)))  # AUTH a; the host's AUTH is recorded after the next HELLO
    stray = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "micropython 1.29.0 linux", window=8, max_frame=256,
                      rx_window=4)
    stray.start(0)
    second = host.receive(say(stray.poll(0)))  # HELLO b, crossing: the host answers it too
    w.write(capture.HOST, auth)
    w.write(capture.HOST, second)
    t._feed(auth)
    assert t.peer.up()
    recs = [tap_record(seq, GOOD, seq) for seq in range(1, 4)]
    assert t.peer.send(link.RECORDS, link.records(recs, TERMINAL), 3) is not None
    while True:
        p = t.peer.poll(0)
        if p is None:
            break
        w.write(capture.HOST, host.receive(say(p)))
    w.close()
    sessions = capture.decode(capture.read(path), lambda tid: KEY)
    assert len(sessions) == 2
    assert [record.seq_of(r) for r in capture.records(sessions)] == [1, 2, 3]
    assert sessions[0].unopened == sessions[1].unopened == 0
    store.close()
