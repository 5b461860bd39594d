"""The collector over TCP: one Session per connection, every link's reads sharing group commits
(host_sim/backend/ingest.py), and limits so that strangers cannot stop it serving terminals.

- A connection waits for bytes or for its session's next timer (Session.deadline()), never polls: an
  idle connection costs nothing until its timeout.
- Handshake timeout: a connection not authenticated within `handshake_timeout` is closed.  Idle
  timeout: an authenticated one that sent nothing for `idle_timeout` is closed.  A healthy terminal
  sends STATUS every 5 s (protocol/SPEC.md section 7), so the default 60 s never cuts one.
- TCP keepalive on every accepted socket, so a peer that vanished is noticed by the kernel too.
- At most `max_connections` at once: the ones beyond are closed at once, counted, and logged
  rate-limited (host_sim/backend/log_limit.py).
- Frames before authentication (HELLO, AUTH, ERROR) are rate-limited per source address with a token
  bucket; a connection that exceeds it is closed.
- Replies are written without awaiting drain; a client whose unsent replies exceed `max_buffer` does
  not read them and is closed.  No store transaction is ever open across an await.
- A handshake is answered at once, not in a group commit behind other links' uploads; a RECORDS frame
  sent before the handshake completed is stored in a transaction of its own (Store.store())."""

import asyncio
import socket
import sqlite3

from host_sim.backend import ingest
from host_sim.backend.host_session import Session
from host_sim.backend.log_limit import limit as log_limit
from host_sim.backend.log_limit import peer_log
from host_sim.backend.store import StoreError
from host_sim.sim import capture as capture_mod
from protocol import peer as peer_mod

log = peer_log

MAX_CONNECTIONS = 4000
HANDSHAKE_TIMEOUT = 20.0  # s; a terminal retries HELLO every 2 s, a slow modem needs a few s per frame
IDLE_TIMEOUT = 60.0  # s; twelve missed STATUS heartbeats
MAX_BUFFER = 256 * 1024  # unsent reply bytes per connection
READ_SIZE = 32 * 1024  # bytes taken from one connection at a time: a flood cannot hog a loop pass
HANDSHAKE_RATE = 10.0  # unauthenticated frames per second per source address (refill of the bucket)
HANDSHAKE_BURST = 50  # frames a source address may send at once (a NAT with many terminals reconnecting)
TICK = 5.0  # s; an authenticated session is woken at least this often (deny-list changes to offer)
KEEPALIVE = ((getattr(socket, "TCP_KEEPIDLE", None), 60), (getattr(socket, "TCP_KEEPINTVL", None), 10),
             (getattr(socket, "TCP_KEEPCNT", None), 5))


class Limits:
    """The collector's limits for TCP links (flags of `collector`)."""

    def __init__(self, max_connections=MAX_CONNECTIONS, handshake_timeout=HANDSHAKE_TIMEOUT,
                 idle_timeout=IDLE_TIMEOUT, max_buffer=MAX_BUFFER, handshake_rate=HANDSHAKE_RATE,
                 handshake_burst=HANDSHAKE_BURST):
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_buffer = max_buffer
        self.handshake_rate = handshake_rate
        self.handshake_burst = handshake_burst


class Buckets:
    """Token buckets per source address: `rate` tokens a second up to `burst`."""

    def __init__(self, rate, burst, clock):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.levels = {}  # address -> (tokens, time)

    def take(self, address):
        now = self.clock()
        tokens, then = self.levels.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self.levels[address] = (tokens, now)
            return False
        self.levels[address] = (tokens - 1, now)
        return True

    def prune(self):
        """Forget the addresses whose bucket has refilled (the table stays as small as the abuse)."""
        now = self.clock()
        full = [a for a, (t, then) in self.levels.items() if t + (now - then) * self.rate >= self.burst]
        for a in full:
            del self.levels[a]


def _keepalive(writer):
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in KEEPALIVE:
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:  # a socket that is already gone
        pass


class TcpCollector:
    """The connections of one `collector --listen`: counters for logs, tests and benchmarks."""

    def __init__(self, store, backoffice=None, limits=None, recorder=None):
        self.store = store
        self.recorder = recorder  # host_sim/sim/capture.py Recorder: one capture file per connection
        self.backoffice = backoffice
        self.limits = limits or Limits()
        self.committer = ingest.GroupCommitter(store)
        self.active = 0
        self.closed = {"over_limit": 0, "handshake_timeout": 0, "idle_timeout": 0, "rate_limited": 0,
                       "not_reading": 0}
        self.buckets = None

    async def housekeeping(self):
        """Every log interval: summaries of suppressed log lines, forgotten full buckets."""
        while True:
            await asyncio.sleep(log_limit.interval)
            log_limit.flush()
            if self.buckets is not None:
                self.buckets.prune()

    async def client(self, reader, writer):
        peer = writer.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        if self.active >= self.limits.max_connections:
            self.closed["over_limit"] += 1
            log.warning("connection from %s refused: %d connections open, the limit", address, self.active)
            writer.transport.abort()
            return
        self.active += 1
        try:
            await self._serve(reader, writer, peer, address)
        except asyncio.CancelledError:  # the collector stops: its links end with it
            writer.transport.abort()
        finally:
            self.active -= 1

    def _session(self, address):
        session = Session(self.store, backoffice=self.backoffice)
        session.gate = lambda: self.buckets.take(address)
        return session

    async def _serve(self, reader, writer, peer, address):
        loop = asyncio.get_running_loop()
        if self.buckets is None:
            self.buckets = Buckets(self.limits.handshake_rate, self.limits.handshake_burst, loop.time)
        _keepalive(writer)
        log.info("connection from %s", peer)
        session = None  # made at the first byte: a silent connection costs no Session
        capture = self.recorder.open("tcp", "%s:%s" % peer[:2] if isinstance(peer, tuple) else peer) \
            if self.recorder is not None else None
        started = heard = loop.time()
        why = None
        finished = False
        try:
            while True:
                up = session is not None and session.peer.up()
                limit_at = heard + self.limits.idle_timeout if up else started + self.limits.handshake_timeout
                wake = limit_at
                timer = session.deadline() if session is not None else None
                if timer is not None:
                    wake = min(wake, loop.time() + timer)
                if up:
                    wake = min(wake, loop.time() + TICK)
                try:
                    async with asyncio.timeout_at(wake):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    data = None
                if data == b"":
                    break
                if loop.time() >= limit_at and not (up and data):  # bytes that never authenticate count not
                    why = "idle_timeout" if up else "handshake_timeout"
                    log.info("closing the link of %s: %s", _name(session, peer),
                             "nothing heard for %g s" % self.limits.idle_timeout if up else
                             "not authenticated within %g s" % self.limits.handshake_timeout)
                    break
                if data:
                    heard = loop.time()
                    if capture is not None:
                        capture.write(capture_mod.TERMINAL, data)
                    if session is None:
                        session = self._session(address)
                    if up:
                        reply = await self.committer.receive(session, data)
                    else:
                        reply = session.receive(data)  # a handshake: at once, not behind other links' uploads
                elif session is not None:
                    try:
                        reply = session.receive(b"")  # timers only
                    except sqlite3.Error as e:  # the database out of reach: the link waits for it
                        log.warning("link of %s waits for the database: %s", _name(session, peer), e)
                        reply = b""
                else:
                    reply = b""
                if session is not None and session.gated:
                    why = "rate_limited"
                    log.warning("closing the connection from %s: over %g handshake frames a second from %s",
                                peer, self.limits.handshake_rate, address)
                    break
                if reply:
                    if capture is not None:
                        capture.write(capture_mod.HOST, reply)
                    writer.write(reply)  # never awaits drain: a client that does not read is closed below
                    if writer.transport.get_write_buffer_size() > self.limits.max_buffer:
                        why = "not_reading"
                        log.warning("closing the link of %s: over %d reply bytes it does not read",
                                    _name(session, peer), self.limits.max_buffer)
                        break
                if session is not None and session.finished:  # after ERROR 4/5 or BYE: the host closes
                    log.info("closing the link of %s: %s", _name(session, peer),
                             "said BYE" if session.peer.state == peer_mod.CLOSED else "handshake refused")
                    finished = True
                    break
        except StoreError as e:
            log.error("closing the link of %s: %s; it will send its records again", _name(session, peer), e)
        except sqlite3.Error as e:  # a handshake while the database is out of reach: the terminal tries again
            log.warning("closing the link of %s: the database failed: %s", _name(session, peer), e)
        except ConnectionError as e:
            log.info("connection from %s lost: %s", peer, e)
        finally:
            if capture is not None:
                capture.close()
            if why is not None:
                self.closed[why] += 1
            if not finished and (why in ("rate_limited", "not_reading") or writer.transport.get_write_buffer_size()):
                writer.transport.abort()  # nothing more for it: unsent bytes would keep it open
            else:
                writer.close()


def _name(session, peer):
    """A link in the log: its terminal once authenticated, else its address."""
    return session.terminal if session is not None and session.terminal else peer


async def serve_tcp(host, port, store, backoffice=None, limits=None, reuse_port=False, recorder=None):
    """Serve terminals over TCP; every link's reads share group commits (host_sim/backend/ingest.py).
    `reuse_port`: other processes may listen on the same port (SO_REUSEPORT), each taking a share of
    the connections; several collectors on one PostgreSQL database serve one address that way.
    `recorder`: a capture Recorder (host_sim/sim/capture.py) that gets every connection's bytes."""
    collector = TcpCollector(store, backoffice, limits, recorder)
    server = await asyncio.start_server(collector.client, host, port, backlog=1024, reuse_port=reuse_port or None)
    server.committer = collector.committer  # type: ignore[attr-defined]  # counters for tests and benchmarks
    server.collector = collector  # type: ignore[attr-defined]
    server.housekeeping = asyncio.get_running_loop().create_task(collector.housekeeping())  # type: ignore[attr-defined]
    return server
