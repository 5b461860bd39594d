"""Record and replay (host_sim/sim/capture.py, replay.py): a real TCP session recorded by the collector,
replayed to a fresh collector, which then holds the same records; bad captures refused with a reason."""

import os
import threading

import pytest

from host_sim import __main__ as cli
from host_sim.bench.capture import LoopbackCollector
from host_sim.sim import capture, replay
from tests.host_sim.helpers import GOOD, KEY, TERMINAL, free_port, registered, tap_record


def stored(store):
    return store.query("SELECT terminal, seq, raw FROM records ORDER BY terminal, seq")


def test_a_recorded_session_replayed_to_a_fresh_collector_leaves_the_same_records(tmp_path, capsys):
    recs = [tap_record(seq, GOOD, seq) for seq in range(1, 41)]
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    original = registered(tmp_path / "a")
    with LoopbackCollector(original, capture.Recorder(str(tmp_path / "cap"))) as c:
        result = replay.upload("127.0.0.1", c.port, TERMINAL, KEY, recs)
    assert result["sent"] == 40
    files = os.listdir(tmp_path / "cap")
    assert len(files) == 1 and files[0].startswith("tcp-127.0.0.1-")
    path = str(tmp_path / "cap" / files[0])
    cap = capture.read(path)
    assert {e.direction for e in cap.entries} == {capture.TERMINAL, capture.HOST}
    assert [t for t, _ in cap.side(capture.TERMINAL)] == sorted(t for t, _ in cap.side(capture.TERMINAL))
    assert len(stored(original)) == 40

    fresh = registered(tmp_path / "b")
    assert stored(fresh) == []
    with LoopbackCollector(fresh) as c:
        code = cli.main(["sim", "replay", path, "--to", "127.0.0.1:%d" % c.port, "--key", KEY.hex()])
    assert code == 0, capsys.readouterr().err
    assert '"sent": 40' in capsys.readouterr().out
    assert stored(fresh) == stored(original)


def test_the_capture_decodes_only_with_the_right_device_key(tmp_path, capsys):
    os.makedirs(tmp_path / "a")
    with LoopbackCollector(registered(tmp_path / "a"), capture.Recorder(str(tmp_path / "cap"))) as c:
        replay.upload("127.0.0.1", c.port, TERMINAL, KEY, [tap_record(1, GOOD, 1)])
    cap = capture.read(str(tmp_path / "cap" / os.listdir(tmp_path / "cap")[0]))
    assert [len(s.terminal_said) > 0 for s in capture.decode(cap, lambda tid: KEY)] == [True]
    assert capture.records(capture.decode(cap, lambda tid: KEY)) == [tap_record(1, GOOD, 1)]
    wrong = capture.decode(cap, lambda tid: bytes(32))
    assert capture.records(wrong) == [] and wrong[0].unopened > 0  # nothing opens: no records, counted
    path = str(tmp_path / "cap" / os.listdir(tmp_path / "cap")[0])
    assert cli.main(["sim", "replay", path, "--to", "127.0.0.1:9", "--key", "00" * 32]) == 1
    assert "device key does not open" in capsys.readouterr().err
    assert cli.main(["sim", "replay", path, "--to", "127.0.0.1:9"]) == 1
    assert "needs the terminal's device key" in capsys.readouterr().err
    assert cli.main(["sim", "replay", path, "--to", "127.0.0.1:%d" % free_port(), "--key", KEY.hex()]) == 1
    assert "cannot connect" in capsys.readouterr().err


def _capture_file(tmp_path):
    w = capture.Writer(str(tmp_path / "x.zfcap"), "tcp test", clock=lambda: 7)
    w.write(capture.TERMINAL, b"\x00abc\x00")
    w.write(capture.HOST, b"\x00de\x00")
    w.close()
    return tmp_path / "x.zfcap"


def test_a_capture_reads_back_entry_by_entry(tmp_path):
    cap = capture.read(str(_capture_file(tmp_path)))
    assert cap.header["link"] == "tcp test" and cap.header["start_us"] == 7
    assert [(e.direction, e.t_us, e.data) for e in cap.entries] == [(capture.TERMINAL, 7, b"\x00abc\x00"),
                                                                   (capture.HOST, 7, b"\x00de\x00")]


@pytest.mark.parametrize("cut, reason", [(3, "not a link capture"), (9, "truncated inside its header"),
                                         (-1, "entry 2 at byte"), (-6, "entry 2 at byte")])
def test_a_truncated_or_foreign_capture_is_refused_with_the_reason(tmp_path, cut, reason):
    path = _capture_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(capture.CaptureError, match=reason):
        capture.read(str(path))


def test_replay_of_a_foreign_file_is_one_line_and_exit_1(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert cli.main(["sim", "replay", str(path), "--to", "127.0.0.1:9", "--key", KEY.hex()]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a link capture" in err


class Board:
    """A terminal-side Peer behind a TCP listener: stands in for a board's uplink in --as-host."""

    def __init__(self):
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import time

        from protocol import frame, link, peer

        conn, _ = self.listener.accept()
        conn.settimeout(0.02)
        p = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "board", window=8, max_frame=256, rx_window=4)
        reader = frame.FrameReader()
        p.start(0)
        start = time.monotonic()
        while True:
            now = int((time.monotonic() - start) * 1000)
            while (out := p.poll(now)) is not None:
                conn.sendall(link.wire(out))
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for q in reader.feed(data):
                p.feed(q, now)
        conn.close()
        self.listener.close()


def test_as_host_plays_the_host_side_and_names_where_the_board_diverges(tmp_path, capsys):
    os.makedirs(tmp_path / "a")
    with LoopbackCollector(registered(tmp_path / "a"), capture.Recorder(str(tmp_path / "cap"))) as c:
        replay.upload("127.0.0.1", c.port, TERMINAL, KEY, [tap_record(1, GOOD, 1)])
    path = str(tmp_path / "cap" / os.listdir(tmp_path / "cap")[0])
    board = Board()
    assert cli.main(["sim", "replay", path, "--as-host", "127.0.0.1:%d" % board.port, "--speed", "50"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    # the board says HELLO and answers the recorded HELLO with its AUTH; the recorded host AUTH proves
    # nothing to the board's fresh nonce, so the recorded RECORDS frame is where the answers diverge (the
    # board stays silent, or tries HELLO again after its retry time)
    first = result["first_divergence"]
    assert (first["frame"], first["recorded"]) == (2, "RECORDS secured")
    assert first["answered"] in (None, "HELLO")


def test_collector_record_into_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code = cli.main(["collector", "--db", str(tmp_path / "c.db"), "--listen", "127.0.0.1:0",
                     "--record", str(blocker)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("collector: cannot record into")
