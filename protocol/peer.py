"""One end of a link-protocol v1 connection, without I/O: handshake, security, selective repeat, acks.

The firmware uplink (asyncio over a UART), the collector (serial port or TCP) and the link benchmark
all drive the same object: feed() received frame payloads, send() application messages, and put
whatever poll() returns on the wire (frame-encoded by the caller), waking again after deadline().
The clock is the caller's, in milliseconds.

Handshake (SPEC.md "Link protocol", section "Handshake"):
    terminal -> HELLO(terminal id, firmware, caps, window, max frame, nonce_t)
    host     -> HELLO(host id, ..., nonce_h)          or ERROR(UNKNOWN_TERMINAL)
    terminal -> AUTH(proof_t)
    host     -> AUTH(proof_h)                         or ERROR(AUTH_FAILED)
after which every frame either way is secured (protocol/session.py).
"""

import os

from protocol import crypto, link, session
from protocol.selective_repeat import Receiver, Sender

ROLE_TERMINAL = session.ROLE_TERMINAL
ROLE_HOST = session.ROLE_HOST

IDLE = 0
HELLO_SENT = 1
AUTH_SENT = 2
UP = 3
CLOSED = 4

HANDSHAKE_RETRY_MS = 2000
CAPS = link.CAP_RECORDS | link.CAP_CONFIG | link.CAP_TIME | link.CAP_STATUS
CAPS |= link.CAP_ONLINE


class Peer:
    """`key` is the device key (terminal) or a function terminal id -> key or None (host)."""

    def __init__(self, role, ident, key, firmware="", window=16, max_frame=256, rx_window=8,
                 slots=None, nonce=None):
        self.role = role
        self.ident = bytes(ident)
        self._key = key
        self.firmware = firmware
        self.window = window
        self.max_frame = max_frame
        self.max_payload = link.max_payload(max_frame)
        self.rx_window = rx_window
        self._fixed_nonce = nonce
        self.sender = Sender(window, self.max_payload, slots)
        self.receiver = Receiver(rx_window)
        self.state = IDLE
        self.session = None
        self.terminal = None  # the authenticated terminal id (host: learned from HELLO)
        self.peer_hello = None
        self._hello_mine = b""
        self._pending = None  # host: (key, terminal, transcript) of a handshake in progress
        self._control = []  # unsequenced payloads to send next (HELLO, AUTH, ERROR, BYE)
        self._ack_due = False
        self._handshake_at = 0
        self.errors = {"malformed": 0, "mac": 0, "replay": 0, "duplicate": 0, "refused": 0}
        self.events = []  # (what, detail) for the caller's log: unknown terminal, bad proof, ERROR

    # -- handshake -------------------------------------------------------------------------------

    def _nonce(self):
        return self._fixed_nonce if self._fixed_nonce is not None else os.urandom(16)

    def _hello_body(self):
        return link.hello(self.ident, self.firmware, CAPS, self.rx_window, self.max_frame, self._nonce())

    def start(self, now):
        """Terminal: (re)start the handshake."""
        self._hello_mine = self._hello_body()
        self._control = [link.encode(link.HELLO, self._hello_mine)]
        self.state = HELLO_SENT
        self.session = None
        self._handshake_at = now

    def _on_hello(self, msg, body):
        if self.role == ROLE_HOST:
            key = self._key(msg["terminal"])
            if key is None:
                self.errors["refused"] += 1
                self.events.append(("unknown terminal", msg["terminal"].hex()))
                self._control.append(link.encode(link.ERROR, link.error(link.E_UNKNOWN_TERMINAL, "unknown terminal")))
                return
            mine = self._hello_body()
            self._pending = (key, msg["terminal"], session.transcript(body, mine), msg)
            self._control.append(link.encode(link.HELLO, mine))
            return
        if self.state != HELLO_SENT:
            return
        self.peer_hello = msg
        th = session.transcript(self._hello_mine, body)
        self._pending = (self._key, self.ident, th, msg)
        self._control.append(link.encode(link.AUTH, link.auth(session.proof(self._key, ROLE_TERMINAL, th))))
        self.state = AUTH_SENT

    def _on_auth(self, msg):
        if self._pending is None:
            return
        key, terminal, th, hello = self._pending
        other = ROLE_HOST if self.role == ROLE_TERMINAL else ROLE_TERMINAL
        if not crypto.equal(msg["proof"], session.proof(key, other, th)):
            self.errors["refused"] += 1
            self.events.append(("bad proof", terminal.hex()))
            if self.role == ROLE_HOST:
                self._control.append(link.encode(link.ERROR, link.error(link.E_AUTH_FAILED, "authentication failed")))
            self._pending = None
            return
        if self.role == ROLE_HOST:
            self._control.append(link.encode(link.AUTH, link.auth(session.proof(key, ROLE_HOST, th))))
        self._pending = None
        self.session = session.Session(key, self.role, th)
        self.terminal = terminal
        self.peer_hello = hello
        self.sender.set_window(min(self.window, hello["window"]))
        peer_payload = link.max_payload(hello["max_frame"])
        if peer_payload < self.max_payload:
            self.max_payload = peer_payload
        self.receiver = Receiver(self.rx_window)
        self.sender.reset_timers()
        self.state = UP
        self.events.append(("up", terminal.hex()))

    # -- receiving -------------------------------------------------------------------------------

    def feed(self, payload, now, handler=None):
        """Handle one received frame payload; returns the application messages it delivered (dicts).
        `handler(msg)`, when given, processes a sequenced message before it is marked received: if it
        returns False the frame is not acknowledged, so the sender transmits it again later."""
        try:
            mtype, flags, seq, ack, sack, hs = link.unpack_header(payload)
            if flags & link.FLAG_SECURE:
                if self.session is None:
                    self.errors["mac"] += 1
                    return []
                macs, replays = self.session.mac_errors, self.session.replays
                clear = self.session.open(payload)
                if clear is None:
                    self.errors["mac"] += self.session.mac_errors - macs
                    self.errors["replay"] += self.session.replays - replays
                    return []
                payload = clear
            elif mtype not in (link.HELLO, link.AUTH, link.ERROR):
                self.errors["malformed"] += 1  # after the handshake only these may travel in the clear
                return []
            msg = link.decode(payload, self.terminal)
        except link.LinkError as e:
            self.errors["malformed"] += 1
            if e.code == link.E_VERSION and self.role == ROLE_HOST and len(payload) > 1 and payload[1] == link.HELLO:
                # the one malformed frame worth an answer: a terminal speaking another version
                self._control.append(link.encode(link.ERROR, link.error(link.E_VERSION, "link protocol v1")))
            return []
        if not flags & link.FLAG_SECURE:
            if mtype == link.HELLO:
                self._on_hello(msg, bytes(memoryview(payload)[hs:]))
            elif mtype == link.AUTH:
                self._on_auth(msg)
            else:
                self.events.append(("error", "%d %s" % (msg["code"], msg["text"])))
                if self.role == ROLE_TERMINAL and self.state != UP:
                    self.state = IDLE
                return [msg]
            return []
        self.sender.on_ack(ack, sack, now)
        if flags & link.FLAG_SEQ:
            self._ack_due = True
            if not self.receiver.is_new(seq):
                self.receiver.accept(seq)  # counts the duplicate or out-of-window frame
                self.errors["duplicate"] += 1
                return []
            if handler is not None and not handler(msg):
                return []
            self.receiver.accept(seq)
        if mtype == link.ACK:
            return []
        if mtype == link.BYE:
            self.state = CLOSED
        return [msg]

    # -- sending ---------------------------------------------------------------------------------

    def up(self):
        return self.state == UP

    def peer_has(self, cap):
        """True once UP with a peer whose HELLO announced capability `cap` (link.CAP_*)."""
        return self.state == UP and self.peer_hello is not None and bool(self.peer_hello["caps"] & cap)

    def can_send(self):
        return self.state == UP and self.sender.can_queue()

    def send(self, mtype, body, tag=0):
        """Queue a sequenced message (retransmitted until acknowledged); None if the window is full."""
        if self.state != UP:
            return None
        if len(body) > self.max_body():
            raise ValueError("a %d-byte body exceeds the %d bytes a frame carries" % (len(body), self.max_body()))
        return self.sender.queue(mtype, body, tag)

    def max_body(self):
        """The largest body send() takes: the frame limit less the header and the security overhead."""
        return self.max_payload - link.HEADER_SIZE - session.OVERHEAD

    def _header_ack(self):
        ack, sack = self.receiver.ack_fields()
        return ack, (sack if sack else None)

    def poll(self, now):
        """The next payload to put on the wire now (secured once UP), or None."""
        if self._control:
            payload = self._control.pop(0)
            return self.session.seal(payload) if self.session is not None and payload[1] not in (
                link.HELLO, link.AUTH) else payload
        if self.role == ROLE_TERMINAL and self.state in (HELLO_SENT, AUTH_SENT):
            if now - self._handshake_at >= HANDSHAKE_RETRY_MS:
                self.start(now)
                return self.poll(now)
            return None
        sec = self.session
        if self.state != UP or sec is None:
            return None
        ack, sack = self._header_ack()
        i = self.sender.poll(now)
        if i >= 0:
            mtype, seq, body = self.sender.frame(i)
            self.sender.mark_sent(i, now)
            if sack is not None and len(body) > self.max_body() - link.SACK_SIZE:
                sack = None  # no room to piggyback the bitmap: a pure ACK carries it
                self._ack_due = True
            else:
                self._ack_due = False
            return sec.seal(link.encode(mtype, bytes(body), seq, ack, sack, link.FLAG_SEQ))
        if self._ack_due:
            self._ack_due = False
            return sec.seal(link.encode(link.ACK, b"", 0, ack, sack))
        return None

    def deadline(self, now):
        """Milliseconds until poll() may have something new (None: only a received frame can help)."""
        if self._control or self._ack_due:
            return 0
        if self.role == ROLE_TERMINAL and self.state in (HELLO_SENT, AUTH_SENT):
            return max(0, HANDSHAKE_RETRY_MS - (now - self._handshake_at))
        if self.state != UP:
            return None
        if self.sender.poll(now) >= 0:
            return 0
        return self.sender.next_deadline(now)

    def error(self, code, text=""):
        """Send ERROR (unsequenced; secured once UP), e.g. CONFIG_REJECTED for a bundle refused."""
        self._control.append(link.encode(link.ERROR, link.error(code, text)))

    def bye(self, reason=0):
        self._control.append(link.encode(link.BYE, link.bye(reason)))
