"""One end of a link-protocol v1 connection, without I/O: handshake, security, selective repeat, acks.

The firmware uplink (asyncio over a UART), the collector (serial port or TCP) and the link benchmark
all drive the same object: feed() received frame payloads, send() application messages, and put
whatever poll() returns on the wire (frame-encoded by the caller), waking again after deadline().
The clock is the caller's, in milliseconds.

Handshake (SPEC.md "Link protocol", section "Handshake"):
    terminal -> HELLO(terminal id, firmware, caps, window, max frame, nonce_t)
    host     -> HELLO(host id, ..., nonce_h)          or ERROR(UNKNOWN_TERMINAL)
    terminal -> AUTH(proof_t)
    host     -> AUTH(proof_h, seq_high)               or ERROR(AUTH_FAILED)
after which every frame either way is secured (protocol/session.py).  seq_high is the highest record
sequence number the host holds for the terminal: the terminal never issues a number at or below it.

Capabilities are honoured: send() refuses a sequenced type the other side did not announce in its
HELLO.  ERRORs this module sends on its own: 3 MALFORMED for an authentic frame whose body does not
decode (the frame is acknowledged all the same), 6 NOT_AUTHENTICATED (host, in the clear, at most once
a second) for a secured frame without a session, 4/5 for a refused handshake, 1 for another version.
"""

import os

from protocol import crypto, frame, link, session
from protocol.selective_repeat import Receiver, Sender

ROLE_TERMINAL = session.ROLE_TERMINAL
ROLE_HOST = session.ROLE_HOST

IDLE = 0
HELLO_SENT = 1
AUTH_SENT = 2
UP = 3
CLOSED = 4

HANDSHAKE_RETRY_MS = 2000
CAPS = link.CAP_RECORDS | link.CAP_CONFIG | link.CAP_TIME | link.CAP_STATUS | link.CAP_ONLINE


class Peer:
    """`key` is the device key (terminal) or a function terminal id -> key or None (host)."""

    def __init__(self, role, ident, key, firmware="", window=16, max_frame=256, rx_window=8,
                 slots=None, nonce=None, caps=None):
        self.role = role
        # a terminal also takes REFUSED (it quarantines)
        self.caps = caps if caps is not None else (CAPS | link.CAP_REFUSED if role == ROLE_TERMINAL else CAPS)
        self.seq_floor = None  # host: function terminal id -> highest sequence number held (sent in AUTH)
        self.host_seq_high = None  # terminal: the seq_high of the host's verified AUTH
        self.renew = False  # terminal: the host lost our session (ERROR 6): start a new one now
        self.malformed = []  # (seq, clear payload) of authentic frames whose body did not decode
        self._error_at = {}  # ERROR code -> when it was last sent unsolicited
        self.finished = False  # host: ERROR 4/5 sent or BYE received: the caller closes the link after poll()
        self.ident = bytes(ident)
        self._key = key
        self.firmware = firmware
        self.window = window
        self.max_frame = max_frame
        self.max_payload = link.max_payload(max_frame)
        self.rx_window = rx_window
        self._fixed_nonce = nonce
        self.sender = Sender(window, self.max_payload, slots)
        self._clear = bytearray(frame.MAX_PAYLOAD)  # the clear form of the frame being sealed
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
        return link.hello(self.ident, self.firmware, self.caps, self.rx_window, self.max_frame, self._nonce())

    def start(self, now):
        """Terminal: (re)start the handshake."""
        self._hello_mine = self._hello_body()
        self._control = [link.encode(link.HELLO, self._hello_mine)]
        self.state = HELLO_SENT
        self.session = None
        self._handshake_at = now

    def reset(self, now):
        """Terminal: a new session on this Peer, as a new Peer would start it (fresh nonce, no session,
        empty windows and counters), keeping the Sender's slot buffers: a reconnect allocates only
        the handshake's messages."""
        self.sender.reset()
        self.receiver.reset()
        self.max_payload = link.max_payload(self.max_frame)
        self.session = None
        self.terminal = None
        self.peer_hello = None
        self._pending = None
        del self._control[:]
        self._ack_due = False
        self.host_seq_high = None
        self.renew = False
        del self.malformed[:]
        self._error_at.clear()
        self.finished = False
        for k in self.errors:
            self.errors[k] = 0
        del self.events[:]
        self.start(now)

    def _on_hello(self, msg, body):
        if self.role == ROLE_HOST:
            key = self._key(msg["terminal"])
            if key is None:
                self.errors["refused"] += 1
                self.events.append(("unknown terminal", msg["terminal"].hex()))
                self._control.append(link.encode(link.ERROR, link.error(link.E_UNKNOWN_TERMINAL, "unknown terminal")))
                self.finished = True
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
        if self.role == ROLE_TERMINAL:  # the host's AUTH carries seq_high, covered by its proof
            good = "seq_high" in msg and crypto.equal(msg["proof"], session.proof(key, ROLE_HOST, th,
                                                                                  msg["seq_high"]))
        else:
            good = "seq_high" not in msg and crypto.equal(msg["proof"], session.proof(key, ROLE_TERMINAL, th))
        if not good:
            self.errors["refused"] += 1
            self.events.append(("bad proof", terminal.hex()))
            if self.role == ROLE_HOST:
                self._control.append(link.encode(link.ERROR, link.error(link.E_AUTH_FAILED, "authentication failed")))
                self.finished = True
            self._pending = None
            return
        if self.role == ROLE_HOST:
            high = self.seq_floor(terminal) if self.seq_floor is not None else 0
            self._control.append(link.encode(link.AUTH, link.auth(session.proof(key, ROLE_HOST, th, high), high)))
        else:
            self.host_seq_high = msg["seq_high"]
        self._pending = None
        self.session = session.Session(key, self.role, th)
        self.terminal = terminal
        self.peer_hello = hello
        self.sender.reset()  # numbers start at 1 in each session: frames of the last one are never resent
        self.sender.set_window(min(self.window, hello["window"]))
        peer_payload = link.max_payload(hello["max_frame"])
        if peer_payload < self.max_payload:
            self.max_payload = peer_payload
        self.receiver = Receiver(self.rx_window)
        self.state = UP
        self.events.append(("up", terminal.hex()))

    # -- receiving -------------------------------------------------------------------------------

    def feed(self, payload, now, handler=None):
        """Handle one received frame payload; returns the application messages it delivered (dicts).
        `handler(msg)`, when given, processes a sequenced message before it is marked received: if it
        returns False the frame is not acknowledged, so the sender transmits it again later."""
        try:
            mtype, flags, seq, ack, sack, hs = link.unpack_header(payload)
        except link.LinkError as e:
            self.errors["malformed"] += 1
            if e.code == link.E_VERSION and self.role == ROLE_HOST and len(payload) > 1 and payload[1] == link.HELLO:
                # the one malformed clear frame worth an answer: a terminal speaking another version
                self._control.append(link.encode(link.ERROR, link.error(link.E_VERSION, "link protocol v1")))
            return []
        if flags & link.FLAG_SECURE:
            if self.session is None:
                self.errors["mac"] += 1
                if self.role == ROLE_HOST and self._pending is None:
                    self.unsolicited(link.E_NOT_AUTHENTICATED, "no session: start a new handshake", now)
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
        try:
            msg = link.decode(payload, self.terminal)
        except link.LinkError as e:
            self.errors["malformed"] += 1
            if flags & link.FLAG_SECURE:
                # An authentic frame whose body does not decode: acknowledge it (a retransmission would
                # not decode either), keep it for the caller (self.malformed), answer ERROR 3 naming it.
                self.sender.on_ack(ack, sack, now)
                if flags & link.FLAG_SEQ:
                    self._ack_due = True
                    if not self.receiver.is_new(seq):
                        return []
                    self.receiver.accept(seq)
                self.malformed.append((seq, payload))
                self.events.append(("malformed", "frame %d (%s): %s" % (seq, link.NAMES[mtype], e)))
                if mtype != link.ERROR:  # never answer an ERROR with an ERROR
                    self.error(link.E_MALFORMED, "frame %d: %s" % (seq, e))
            return []
        if not flags & link.FLAG_SECURE:
            if mtype == link.HELLO:
                self._on_hello(msg, bytes(memoryview(payload)[hs:]))
            elif mtype == link.AUTH:
                self._on_auth(msg)
            else:
                self.events.append(("error", "%d %s" % (msg["code"], msg["text"])))
                if self.role == ROLE_TERMINAL and msg["code"] == link.E_NOT_AUTHENTICATED and self.state != IDLE:
                    # the host lost the session (it restarted): a new handshake now, not after a timeout
                    self.state = IDLE
                    self.session = None
                    self.renew = True
                elif self.role == ROLE_TERMINAL and self.state != UP:
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
            self.finished = True
        return [msg]

    def unsolicited(self, code, text, now):
        """ERROR `code` unless one went out less than a second ago (6 and 7: a flood of bad frames gets
        one answer a second).  Returns True if it was queued."""
        last = self._error_at.get(code)
        if last is not None and now - last < 1000:
            return False
        self._error_at[code] = now
        self.error(code, text)
        return True

    # -- sending ---------------------------------------------------------------------------------

    def peer_takes(self, mtype):
        """Whether the other side announced the capability for sequenced type `mtype` in its HELLO."""
        if mtype == link.RECORDS:
            need = link.CAP_RECORDS
        elif mtype == link.CONFIG_OFFER or mtype == link.CONFIG_CHUNK:
            need = link.CAP_CONFIG
        elif mtype == link.TIME:
            need = link.CAP_TIME
        elif mtype == link.STATUS:
            need = link.CAP_STATUS
        elif mtype == link.REFUSED:
            need = link.CAP_REFUSED
        elif mtype == link.ONLINE_REQUEST or mtype == link.ONLINE_RESULT:
            need = link.CAP_ONLINE
        else:
            return True
        hello = self.peer_hello
        return hello is not None and hello["caps"] & need == need

    def up(self):
        return self.state == UP

    def peer_has(self, cap):
        """True once UP with a peer whose HELLO announced capability `cap` (link.CAP_*)."""
        return self.state == UP and self.peer_hello is not None and bool(self.peer_hello["caps"] & cap)

    def can_send(self):
        return self.state == UP and self.sender.can_queue()

    def send(self, mtype, body, tag=0):
        """Queue a sequenced message (retransmitted until acknowledged); None if the window is full.
        Raises ValueError for a type the peer did not announce (check peer_takes() first)."""
        if self.state != UP:
            return None
        if not self.peer_takes(mtype):
            raise ValueError("the peer did not announce %s" % link.NAMES[mtype])
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
        return self._poll(now, None)

    def poll_into(self, now, out):
        """poll() written into the bytearray `out` (at least frame.MAX_PAYLOAD bytes); its length, 0 when
        nothing is due.  Sequenced frames and ACKs are built in the Peer's one clear buffer and sealed
        straight into `out`: the device's send path allocates no payload per frame."""
        p = self._poll(now, out)
        if p is None:
            return 0
        if isinstance(p, int):
            return p
        out[0:len(p)] = p
        return len(p)

    def _clear_frame(self, mtype, body, seq, ack, sack, flags):
        """header + body in the preallocated clear buffer (a memoryview of it)."""
        buf = self._clear
        if sack is not None:
            flags |= link.FLAG_SACK
        n = link.pack_header(buf, mtype, flags, seq, ack, sack or 0)
        buf[n:n + len(body)] = body
        return memoryview(buf)[:n + len(body)]

    @staticmethod
    def _sealed(sec, clear, out):
        return sec.seal(clear) if out is None else sec.seal_into(clear, out)

    def _poll(self, now, out):
        if self._control:
            payload = self._control.pop(0)
            return self.session.seal(payload) if self.session is not None and payload[1] not in (
                link.HELLO, link.AUTH) else payload
        if self.role == ROLE_TERMINAL and self.state in (HELLO_SENT, AUTH_SENT):
            if now - self._handshake_at >= HANDSHAKE_RETRY_MS:
                self.start(now)
                return self._poll(now, out)
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
            return self._sealed(sec, self._clear_frame(mtype, body, seq, ack, sack, link.FLAG_SEQ), out)
        if self._ack_due:
            self._ack_due = False
            return self._sealed(sec, self._clear_frame(link.ACK, b"", 0, ack, sack, 0), out)
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
