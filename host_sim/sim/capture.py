"""Link captures (protocol/CAPTURE.md): one file per terminal link, every byte both ways with its time.

A capture holds the wire bytes as they passed, nothing decrypted: the link is secured per session, so
reading what a terminal said needs its device key (decode() below re-derives each session's keys from
the two HELLOs in the capture).  Writer appends and flushes entry by entry, so a collector that dies
leaves every complete entry readable; read() refuses a truncated or foreign file with the reason."""

import json
import os
import struct
import time

from protocol import frame, link, session

MAGIC = b"ZFCAP1\n"
TERMINAL = ord("T")  # bytes the terminal sent
HOST = ord("H")  # bytes the host sent
ENTRY = struct.Struct(">BQI")  # direction, time in microseconds, length
MAX_HEADER = 4096
MAX_ENTRY = 1 << 20


class CaptureError(Exception):
    """A file that is not a whole capture: the reason, for one line to the user."""


class Entry:
    """Bytes one side sent at `t_us` (microseconds on the capture's clock)."""

    __slots__ = ("direction", "t_us", "data")

    def __init__(self, direction, t_us, data):
        self.direction = direction
        self.t_us = t_us
        self.data = data


class Capture:
    """A read capture: its header (dict) and its entries in the order they passed."""

    def __init__(self, header, entries):
        self.header = header
        self.entries = entries

    def side(self, direction):
        """[(t_us, frame payload)] one side sent, cut into frames."""
        reader = frame.FrameReader()
        out = []
        for e in self.entries:
            if e.direction == direction:
                out.extend((e.t_us, bytes(p)) for p in reader.feed(e.data))
        return out


class Writer:
    """One link's capture file.  `clock` gives microseconds (wall clock unless a simulator's)."""

    def __init__(self, path, link_name, clock=None, clock_name="wall"):
        self.clock = clock or (lambda: int(time.time() * 1_000_000))
        header = json.dumps({"link": link_name, "clock": clock_name, "start_us": self.clock()}).encode()
        self.path = path
        self._f = open(path, "wb")
        self._f.write(MAGIC + struct.pack(">H", len(header)) + header)
        self._f.flush()

    def write(self, direction, data, t_us=None):
        if not data:
            return
        self._f.write(ENTRY.pack(direction, self.clock() if t_us is None else t_us, len(data)))
        self._f.write(data)
        self._f.flush()

    def close(self):
        self._f.close()


class Recorder:
    """A folder of captures, one new file per link (`collector --record DIR`)."""

    def __init__(self, folder, clock=None, clock_name="wall"):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.clock = clock
        self.clock_name = clock_name
        self._n = 0

    def open(self, kind, where):
        """A Writer for a new link of `kind` ("tcp", "serial") from `where` (address or device)."""
        self._n += 1
        safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in str(where)).strip("-")
        name = "%s-%s-%d-%d.zfcap" % (kind, safe, os.getpid(), self._n)
        return Writer(os.path.join(self.folder, name), "%s %s" % (kind, where), self.clock, self.clock_name)


def read(path):
    """The Capture in `path`; CaptureError naming what is wrong with a foreign or truncated file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CaptureError("%s: %s" % (path, e.strerror or e)) from None
    if not data.startswith(MAGIC):
        raise CaptureError("%s is not a link capture (no %r at its start)" % (path, MAGIC.strip().decode()))
    i = len(MAGIC)
    if len(data) < i + 2:
        raise CaptureError("%s is truncated inside its header" % path)
    (n,) = struct.unpack_from(">H", data, i)
    i += 2
    if n > MAX_HEADER or len(data) < i + n:
        raise CaptureError("%s is truncated inside its header" % path)
    try:
        header = json.loads(data[i:i + n])
        if not isinstance(header, dict) or not isinstance(header.get("link"), str):
            raise ValueError("no link named")
    except ValueError as e:
        raise CaptureError("%s: its header is not a capture header (%s)" % (path, e)) from None
    i += n
    entries = []
    while i < len(data):
        if len(data) - i < ENTRY.size:
            raise CaptureError("%s is truncated: entry %d at byte %d has %d of its %d header bytes"
                               % (path, len(entries) + 1, i, len(data) - i, ENTRY.size))
        direction, t_us, size = ENTRY.unpack_from(data, i)
        if direction not in (TERMINAL, HOST):
            raise CaptureError("%s: entry %d at byte %d has direction %d, not T or H" % (path, len(entries) + 1, i,
                                                                                       direction))
        if size > MAX_ENTRY:
            raise CaptureError("%s: entry %d at byte %d claims %d bytes (at most %d)" % (path, len(entries) + 1, i,
                                                                                       size, MAX_ENTRY))
        i += ENTRY.size
        if len(data) - i < size:
            raise CaptureError("%s is truncated: entry %d at byte %d has %d of its %d bytes"
                               % (path, len(entries) + 1, i - ENTRY.size, len(data) - i, size))
        entries.append(Entry(direction, t_us, data[i:i + size]))
        i += size
    return Capture(header, entries)


class Session:
    """What one handshake of a capture carried: the terminal, its HELLO, the host's seq_high, and the
    clear messages each side sent (dicts of protocol/link.py decode(), with "t_us")."""

    def __init__(self, terminal, hello):
        self.terminal = terminal
        self.hello = hello
        self.seq_high = None
        self.unopened = 0  # secured frames whose MAC did not verify: altered, or another key
        self.terminal_said = []
        self.host_said = []


LIVE = 3  # handshakes whose keys may still open frames: a terminal may go on in its session after a new HELLO


def decode(capture, key_of):
    """The sessions of a capture, opened with the device key: `key_of(terminal id)` -> key or None.
    Frames that do not open (altered, replayed, retransmitted) are left out, as a collector would.  A
    HELLO that crosses a session (the terminal sends a new one as the host authenticates the old, the
    host answers both) does not end the old session: a secured frame belongs to the newest handshake
    whose keys open it."""
    readers = {TERMINAL: frame.FrameReader(), HOST: frame.FrameReader()}
    sessions = []
    t_hello = None  # (body, msg) of the terminal's latest HELLO
    current = None
    live = []  # (Session, {direction: protocol.session.Session}) of the latest handshakes, newest first
    for e in capture.entries:
        for payload in readers[e.direction].feed(e.data):
            payload = bytes(payload)
            try:
                mtype, flags, _, _, _, hs = link.unpack_header(payload)
            except link.LinkError:
                continue
            if not flags & link.FLAG_SECURE:
                try:
                    msg = link.decode(payload)
                except link.LinkError:
                    continue
                if mtype == link.HELLO and e.direction == TERMINAL:
                    t_hello = (payload[hs:], msg)
                elif mtype == link.HELLO and e.direction == HOST and t_hello is not None:
                    key = key_of(t_hello[1]["terminal"])
                    if key is None:
                        raise CaptureError("no device key for terminal %s" % t_hello[1]["terminal"].hex())
                    th = session.transcript(t_hello[0], payload[hs:])
                    current = Session(t_hello[1]["terminal"], t_hello[1])
                    sessions.append(current)
                    live.insert(0, (current, {TERMINAL: session.Session(key, session.ROLE_HOST, th),
                                              HOST: session.Session(key, session.ROLE_TERMINAL, th)}))
                    del live[LIVE:]
                elif mtype == link.AUTH and e.direction == HOST and current is not None:
                    current.seq_high = msg.get("seq_high")
                continue
            owner, clear = _open(live, e.direction, payload)
            if clear is None:
                continue
            try:
                msg = link.decode(clear, owner.terminal)
            except link.LinkError:
                continue
            msg["t_us"] = e.t_us
            (owner.terminal_said if e.direction == TERMINAL else owner.host_said).append(msg)
    return sessions


def _open(live, direction, payload):
    """(owning Session, clear payload) of a secured frame, the newest handshake whose keys open it first;
    (None, None) if none does (an altered frame or another key: counted on the newest; a replay: not)."""
    forged = True
    for owner, opener in live:
        side = opener[direction]
        macs = side.mac_errors
        clear = side.open(payload)
        if clear is not None:
            return owner, clear
        forged = forged and side.mac_errors > macs
    if live and forged:
        live[0][0].unopened += 1
    return None, None


def records(sessions):
    """The raw records the terminal sent over all sessions, each sequence number once, in order."""
    seen = {}
    for s in sessions:
        for msg in s.terminal_said:
            if msg["type"] == "RECORDS":
                for raw in msg["records"]:
                    seen.setdefault(_seq(raw), bytes(raw))
    return [seen[k] for k in sorted(seen)]


def _seq(raw):
    from protocol import record

    return record.seq_of(raw)
