"""`python -m host_sim sim replay CAPTURE`: play one side of a recorded link again (protocol/CAPTURE.md).

--to HOST:PORT plays the terminal's side against a collector.  The link is secured with fresh nonces
per session, so the recorded bytes cannot be sent again as they are (a collector rightly refuses them
as replays); instead the capture is opened with the terminal's device key, and a terminal Peer of
protocol/ with that key runs a new handshake and uploads the records the terminal sent, byte for byte.
The collector must then hold the same records.

--as-host plays the host's recorded bytes to a board's uplink at their recorded pace and reports the
first frame where the board's answer differs from the terminal's recorded one.  The board picks a new
nonce, so the recorded host's AUTH cannot prove itself to it: the divergence is expected at the
handshake and the report says so."""

import json
import socket
import sys
import time

from host_sim import arguments
from host_sim.sim import capture as cap
from protocol import frame, link, peer

WINDOW = 8
ROUND_S = 0.05


class ReplayError(Exception):
    """Why a replay could not finish: one line for the user."""


def _key_of(args):
    if args.key:
        key = args.key
        return lambda tid: key
    from host_sim.backend.store import Store

    store = Store(args.db)
    return lambda tid: store.device_key(tid.hex())


def upload(host, port, terminal, key, recs, firmware="replay", timeout=30.0):
    """Run a terminal Peer against the collector at host:port and upload `recs`; returns what happened."""
    p = peer.Peer(peer.ROLE_TERMINAL, terminal, key, firmware, window=WINDOW, max_frame=256, rx_window=4)
    reader = frame.FrameReader()
    errors = []
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as e:
        raise ReplayError("cannot connect to %s:%d: %s" % (host, port, e.strerror or e)) from None
    sock.settimeout(ROUND_S)
    start = time.monotonic()
    now = lambda: int((time.monotonic() - start) * 1000)  # noqa: E731
    p.start(now())
    queue = list(recs)
    sent = 0
    try:
        while True:
            if time.monotonic() - start > timeout:
                raise ReplayError("the collector did not acknowledge all %d records within %g s (%d sent)"
                                  % (len(recs), timeout, sent))
            if p.up():
                while queue and p.can_send():
                    batch = _batch(queue, p.max_body(), terminal)
                    p.send(link.RECORDS, link.records(batch, terminal), len(batch))
                    del queue[:len(batch)]
                    sent += len(batch)
                if not queue and p.sender.in_flight() == 0:
                    break
            while True:
                out = p.poll(now())
                if out is None:
                    break
                sock.sendall(link.wire(out))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                data = None
            if data == b"":
                raise ReplayError("the collector closed the link (errors: %s)" % (errors or "none"))
            for q in reader.feed(data or b""):
                for m in p.feed(q, now()):
                    if m["type"] == "ERROR":
                        errors.append("%d %s" % (m["code"], m["text"]))
                        if not p.up():
                            raise ReplayError("the collector refused the handshake: ERROR %s" % errors[-1])
        p.bye()
        out = p.poll(now())
        if out is not None:
            sock.sendall(link.wire(out))
    finally:
        sock.close()
    return {"terminal": terminal.hex(), "records": len(recs), "sent": sent, "seq_high_before": p.host_seq_high,
            "errors": errors}


def _batch(queue, room, terminal):
    """The longest head of `queue` whose RECORDS body fits `room` bytes (at least one record)."""
    n = 1
    while n < len(queue) and n < 255 and len(link.records(queue[:n + 1], terminal)) <= room:
        n += 1
    return queue[:n]


def as_host(capture, port, speed=1.0, settle=2.0, first_wait=10.0):
    """Play the host's recorded bytes to the board at `port` (pyserial URL/path, or HOST:PORT); compare
    the frames the board answers with the terminal's recorded frames, type by type.  A recording that
    starts with the terminal is played from the board's first frame (waited for up to `first_wait` s)."""
    recorded_host = [e for e in capture.entries if e.direction == cap.HOST]
    recorded_terminal = [_shape(p) for _, p in capture.side(cap.TERMINAL)]
    conn = _connect(port)
    reader = frame.FrameReader()
    answered = []
    t0 = capture.entries[0].t_us if capture.entries else 0
    try:
        if capture.entries and capture.entries[0].direction == cap.TERMINAL:
            # the recording starts with the terminal (its HELLO): the clock starts when the board speaks
            end = time.monotonic() + first_wait
            while not answered and time.monotonic() < end:
                answered.extend(_shape(bytes(q)) for q in reader.feed(conn.read()))
        start = time.monotonic()
        for e in recorded_host:
            due = start + (e.t_us - t0) / 1e6 / speed
            while time.monotonic() < due:
                answered.extend(_shape(bytes(q)) for q in reader.feed(conn.read()))
            conn.write(e.data)
        end = time.monotonic() + settle
        while time.monotonic() < end:
            answered.extend(_shape(bytes(q)) for q in reader.feed(conn.read()))
    finally:
        conn.close()
    first = None
    for i in range(max(len(recorded_terminal), len(answered))):
        a = recorded_terminal[i] if i < len(recorded_terminal) else None
        b = answered[i] if i < len(answered) else None
        if a != b:
            first = {"frame": i, "recorded": a, "answered": b}
            break
    return {"host_entries": len(recorded_host), "terminal_frames_recorded": len(recorded_terminal),
            "frames_answered": len(answered), "first_divergence": first,
            "note": "the board chooses a fresh nonce: the recorded host AUTH cannot verify, so a divergence at "
                    "the handshake is expected (protocol/CAPTURE.md)"}


def _shape(payload):
    """A frame as compared: its type name and whether it is secured (bodies differ per session)."""
    try:
        mtype, flags, _, _, _, _ = link.unpack_header(payload)
    except link.LinkError as e:
        return "undecodable (%s)" % e
    return "%s%s" % (link.NAMES[mtype], " secured" if flags & link.FLAG_SECURE else "")


class _Tcp:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.settimeout(ROUND_S)

    def read(self):
        try:
            return self.sock.recv(4096)
        except TimeoutError:
            return b""

    def write(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def _connect(port):
    host, sep, number = port.rpartition(":")
    if sep and number.isdigit() and "/" not in port:
        try:
            return _Tcp(host or "127.0.0.1", int(number))
        except OSError as e:
            raise ReplayError("cannot connect to %s: %s" % (port, e.strerror or e)) from None
    import serial

    try:
        return serial.serial_for_url(port, baudrate=115200, timeout=ROUND_S)
    except (serial.SerialException, OSError, ValueError) as e:
        raise ReplayError("cannot open %s: %s" % (port, e)) from None


def add_arguments(parser):
    parser.add_argument("capture", metavar="CAPTURE", help="a capture file (`collector --record`, `sim run --record`)")
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--to", metavar="HOST:PORT", type=arguments.host_port,
                      help="play the terminal's side against this collector")
    side.add_argument("--as-host", metavar="PORT", dest="as_host",
                      help="play the host's side to a board's uplink (serial device, pyserial URL or HOST:PORT)")
    parser.add_argument("--key", type=_hex_key, help="the terminal's device key, 64 hex digits (--to)")
    parser.add_argument("--db", type=arguments.existing_database,
                        help="instead of --key: the recording collector's database, which holds the device key")
    parser.add_argument("--speed", type=float, default=1.0, help="--as-host: recorded pace times this (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="--to: seconds to wait for every acknowledgement")


def _hex_key(text):
    import argparse

    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise argparse.ArgumentTypeError("a device key is 64 hex digits")
    return key


def main(args):
    try:
        capture = cap.read(args.capture)
        if args.as_host:
            result = as_host(capture, args.as_host, args.speed)
        else:
            if not args.key and not args.db:
                raise ReplayError("--to needs the terminal's device key: give --key HEX or --db")
            sessions = cap.decode(capture, _key_of(args))
            if not sessions:
                raise ReplayError("%s holds no complete handshake: nothing to replay" % args.capture)
            recs = cap.records(sessions)
            if not any(s.terminal_said or s.host_said for s in sessions) and any(s.unopened for s in sessions):
                raise ReplayError("the device key does not open %s: no secured frame verifies (another terminal's "
                                  "key?)" % args.capture)
            terminal = sessions[0].terminal
            key = _key_of(args)(terminal)
            result = upload(*arguments.split_host_port(args.to), terminal, key, recs,
                            sessions[0].hello.get("firmware", "replay"), args.timeout)
            result["sessions"] = len(sessions)
    except (cap.CaptureError, ReplayError) as e:
        print("sim replay: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
