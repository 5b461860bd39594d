"""The links of a `sim run`: each terminal's uplink to the run's one collector, which faults can break.

- serial: the board's uplink pty served in this process (one host Session at a time, as
  host_sim/backend/serial_server.py does), the line kept open throughout; while the link is down (a
  coverage gap, the collector crashed) what the terminal sends is read and lost, and the session with it.
- cellular: the board's uplink UART goes to a modem emulator of the terminal's dialect
  (host_sim/emulators/modem), whose sockets reach the collector over real TCP on loopback: a TcpCollector
  (host_sim/backend/tcp_server.py) on the run's Store and Backoffice, in this process, on an asyncio loop
  of its own.  Each cellular terminal gets its own listening port, so its capture is one file and a
  coverage gap or a crash drops exactly its connections.  The board learns the modem from
  /flash/config/uplink.json, which provisioning writes (`provision --uplink`, as a technician would).

With a record folder, every link's bytes go to one capture file per terminal link (protocol/CAPTURE.md,
host_sim/sim/capture.py) on the simulator's clock: simulated seconds, plus the host's microseconds
since the clock last moved (capped below a second) so entries between two taps keep their order.

The acquirer of a run is an AcquirerHost in this process behind an OutageLink: during an acquirer
outage every request fails as unavailable, so transactions stay pending (Backoffice.run_authorisations
backs off and asks again) and are decided once it answers."""

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time

from host_sim import demo
from host_sim.backend import acquirer_link, tcp_server
from host_sim.backend.acquirer_host import AcquirerHost
from host_sim.backend.host_session import Session
from host_sim.emulators.modem import ModemEmulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.sim import capture
from host_sim.tools import vboard
from host_sim.tools.events import EventLog

# A link silent for 3 heartbeats (STATUS every 5 s) is closed: a terminal whose modem lost track of its socket
# across a jump of the simulated clock gets a closed link to reopen, not a minute's wait.
LIMITS = tcp_server.Limits(idle_timeout=15.0)
AFTER_BYTES = ("close_after", "pdp_deact_after", "lose_registration_after", "hang_after")
APN = "cmnet"


class OutageLink(acquirer_link.LocalLink):
    """The in-process acquirer host, which an acquirer outage silences."""

    def __init__(self, acquirer_):
        super().__init__(AcquirerHost(acquirer_))
        self.down = False
        self.refused = 0  # requests that met the outage

    def set_down(self, down):
        self.down = down

    def exchange(self, message):
        if self.down:
            self.refused += 1
            raise acquirer_link.AcquirerUnavailable("the acquirer does not answer (an outage of the scenario)")
        return super().exchange(message)


class SimMicros:
    """Capture times on the simulator's clock (run.py Clock): microseconds, never going back."""

    def __init__(self, clock):
        self.clock = clock
        self._lock = threading.Lock()
        self._seen = None
        self._since = 0.0
        self._last = 0

    def __call__(self):
        with self._lock:
            now = self.clock.now
            if now != self._seen:
                self._seen, self._since = now, time.monotonic()
            t = now * 1_000_000 + min(999_999, int((time.monotonic() - self._since) * 1e6))
            self._last = max(self._last, t)
            return self._last


class _OneFile:
    """A Recorder for one terminal link: every connection of that link goes to the same capture file."""

    def __init__(self, writer):
        self.writer = writer

    def open(self, kind, where):
        return self

    def write(self, direction, data):
        self.writer.write(direction, data)

    def close(self):
        pass  # the link's file outlives its connections: Links.close() closes it


class SerialLink:
    """A board's uplink pty served by the collector in this process; down: bytes read and lost."""

    kind = "serial"

    def __init__(self, name, port, store, office, writer=None):
        import serial

        self.name = name
        self.store, self.office = store, office
        self.writer = writer
        self.covered = True
        self.serving = True
        self._ser = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="uplink-%s" % name, daemon=True)
        self._thread.start()

    def _loop(self):
        session = None
        while not self._stop.is_set():
            try:
                data = self._ser.read(512)
            except (OSError, ValueError):  # the board's pty gone (the run ends)
                if self._stop.wait(0.1):
                    break
                continue
            if not (self.covered and self.serving):
                session = None  # the line is dead: what the terminal sent is lost, its session too
                continue
            if session is None:
                session = Session(self.store, backoffice=self.office)
            if self.writer is not None:
                self.writer.write(capture.TERMINAL, data)
            try:
                reply = session.receive(data)  # also when nothing came: retransmission timers
            except sqlite3.Error:
                reply = b""
            if reply and self.covered and self.serving:
                if self.writer is not None:
                    self.writer.write(capture.HOST, reply)
                try:
                    self._ser.write(reply)
                except (OSError, ValueError):
                    pass
            if session.finished:
                session = None

    def coverage(self, up):
        self.covered = up

    def crash(self):
        self.serving = False

    def restart(self):
        self.serving = True

    def modem_fault(self, name, value):
        raise ValueError("%s has a serial uplink: no modem" % self.name)

    def power_cut(self):
        pass  # the collector's end of the line is not on the terminal's supply

    def join(self, timeout=None):
        self._thread.join(timeout)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self._ser.close()


class TcpHub:
    """The collector's TCP side for the cellular terminals: an asyncio loop on a thread, one listening
    port per terminal, every connection tracked so that a crash can drop them all at once."""

    def __init__(self, store, office):
        self.store, self.office = store, office
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="collector-tcp", daemon=True)
        self._thread.start()
        self.ports = {}  # terminal name -> (port, recorder or None)
        self.servers = {}  # terminal name -> asyncio Server while serving
        self.writers = {}  # terminal name -> set of StreamWriters of its open connections

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, name, recorder=None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.ports[name] = (port, recorder)
        self.writers[name] = set()
        self.serve(name)
        return port

    def serve(self, name):
        port, recorder = self.ports[name]
        collector = tcp_server.TcpCollector(self.store, self.office, LIMITS, recorder)
        conns = self.writers[name]

        async def client(reader, writer):
            conns.add(writer)
            try:
                await collector.client(reader, writer)
            finally:
                conns.discard(writer)

        async def start():
            return await asyncio.start_server(client, "127.0.0.1", port, reuse_address=True)

        self.servers[name] = self._call(start())

    def drop(self, name):
        """Stop serving `name`: no new connection, the open ones reset."""
        server = self.servers.pop(name, None)

        async def stop():
            if server is not None:
                server.close()
            for w in list(self.writers[name]):
                w.transport.abort()

        self._call(stop())

    def close(self):
        for name in list(self.servers):
            self.drop(name)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class CellularLink:
    """A board's uplink UART on a modem emulator whose sockets reach the collector's TcpHub port."""

    kind = "cellular"

    def __init__(self, name, dialect, hub, seed, recorder=None):
        self.name = name
        self.dialect = dialect
        self.hub = hub
        self.port = hub.add(name, recorder)
        self.modem = ModemEmulator(dialect, connect=("127.0.0.1", self.port), seed=seed).start()

    def config(self):
        """/flash/config/uplink.json for the board (firmware/uplink.py)."""
        return {"link": "modem", "dialect": self.dialect, "host": "127.0.0.1", "port": self.port, "apn": APN}

    def coverage(self, up):
        if up:
            self.modem.clear("no_network")
        else:
            self.modem.lose_network()

    def crash(self):
        self.hub.drop(self.name)

    def power_cut(self):
        """The modem shares the terminal's supply: sockets and PDP gone, a send half-taken forgotten."""
        self.modem.restart()

    def restart(self):
        self.hub.serve(self.name)

    def modem_fault(self, name, value):
        """Inject a modem fault (value None: clear it).  A fault that fires after N payload bytes counts
        them from now, not from the modem's first byte."""
        if value is None:
            self.modem.clear(name)
            return
        if name in AFTER_BYTES:
            value = self.modem.counters["bytes_up"] + int(value)
        self.modem.inject(name, value)

    def join(self, timeout=None):
        pass

    def close(self):
        self.modem.close()


class SimTerminal(demo.Terminal):
    """The demo's terminal (board, scanner, display events) with a sim run's link as its uplink."""

    def __init__(self, spec, uid, workdir, links, clock=None, heap=vboard.DEFAULT_HEAP, trace=None):
        self.name = spec["name"]
        self.spec = spec
        self.link = None
        attach = {}
        if spec["uplink"] == "cellular":
            self.link = links.cellular(self.name, spec["dialect"], int(uid))
            attach["uplink"] = self.link.modem.port
            if trace is not None:
                self.link.modem.tap = trace.uart(self.name)
        self.board = vboard.VirtualBoard(os.path.join(workdir, "flash-%s.img" % self.name), uid=uid, clock=clock,
                                         attach=attach, heap=heap,
                                         console_sink=None if trace is None else trace.console(self.name)).start()
        if self.link is None:
            self.link = links.serial(self.name, self.board.ports["uplink"])
        self.uplink = self.link  # run.py joins it at the end
        self.events = EventLog(self.board.ports["events"])
        self.scanner = ScannerEmulator(self.board.ports["scanner"])
        self.terminal = None
        self.accepted = set()
        self.declines = set()  # sequence numbers of the declined taps it journalled

    def uplink_file(self, workdir):
        """A cellular terminal's uplink config as a file for `provision --uplink` (its reset makes the firmware
        read it); None for a serial terminal, which needs none."""
        if not isinstance(self.link, CellularLink):
            return None
        path = os.path.join(workdir, "uplink-%d.json" % self.link.port)
        with open(path, "w") as f:
            json.dump(self.link.config(), f)
        return path


class Links:
    """Every terminal link of a run, the collector's TCP side, and the capture files when recording."""

    def __init__(self, store, office, clock, record_dir=None, seed=0):
        self.store, self.office = store, office
        self.seed = seed
        self.hub = None
        self.links = {}
        self.writers = []
        self.record_dir = record_dir
        self.micros = SimMicros(clock)
        if record_dir is not None:
            os.makedirs(record_dir, exist_ok=True)

    def _writer(self, name, kind):
        if self.record_dir is None:
            return None
        w = capture.Writer(os.path.join(self.record_dir, "%s-%s.zfcap" % (name, kind)), "%s %s" % (kind, name),
                           self.micros, "simulated")
        self.writers.append(w)
        return w

    def serial(self, name, port):
        link = SerialLink(name, port, self.store, self.office, self._writer(name, "serial"))
        self.links[name] = link
        return link

    def cellular(self, name, dialect, seed):
        if self.hub is None:
            self.hub = TcpHub(self.store, self.office)
        w = self._writer(name, "tcp")
        link = CellularLink(name, dialect, self.hub, self.seed * 1000003 + seed, None if w is None else _OneFile(w))
        self.links[name] = link
        return link

    def names(self):
        return list(self.links)

    def modems_idle(self, connected=()):
        """True when no modem is taking a send's payload, and the modems of the terminals named in
        `connected` have their socket open (not in the middle of bringing their link up)."""
        return not any(link.modem.sending() or (name in connected and not link.modem.socket_open())
                       for name, link in self.links.items() if isinstance(link, CellularLink))

    def get(self, name):
        return self.links[name]

    def crash(self):
        for link in self.links.values():
            link.crash()

    def restart(self):
        for link in self.links.values():
            link.restart()

    def close(self):
        for link in self.links.values():
            link.close()
        if self.hub is not None:
            self.hub.close()
        for w in self.writers:
            w.close()
