"""A cellular modem as its UART shows it, whatever its AT dialect: the AT command parser, registration
and signal, faults, the power key, and TCP sockets bridged to real TCP (on loopback in the tests).

The firmware's modem driver talks to this exactly as to the module: AT commands in, replies, URCs and
raw socket payloads out, paced at the baud rate the firmware set on the pty (a real UART paces itself
when `--serve DEVICE` drives a USB-serial adapter).  What it implements is the subset the driver and
common firmware use, with the reply formats of the manuals cited in firmware/drivers/modem*.py:
registration (CREG/CEREG/CGREG, CSQ), PDP, one socket per link id (open, send, read or pushed
payloads, close) and restarts (AT+CFUN=1,1).  A dialect subclass (simcom.py, quectel.py) supplies its
own PDP, socket and restart commands and the text of its URCs.

Faults, set with `--fault NAME=VALUE` or `inject(name, value)` while running:
    no_network=1            never registered (stat 2, CSQ 99), PDP activation fails
    lose_registration_after=N   once N payload bytes went up: registration, PDP and sockets lost for
                            `outage_s` seconds
    cme_errors=N            the next N commands (other than AT, ATE) answer +CME ERROR: 100
    close_after=N           once N payload bytes went up: the remote end closes the socket
    pdp_deact_after=N       once N payload bytes went up: the PDP context is deactivated
    slow_ms=N               every reply and URC is delayed by N ms, socket reads by the same
    garbage=P               with probability P, a line of garbage before a reply or URC, and a "data
                            waiting" URC replaced by a garbled one (the driver must poll)
    split=1                 output leaves in random pieces of 1-7 bytes with short gaps
    stuck=1                 socket opens fail until the modem is restarted (AT+CFUN=1,1 or power)
    hang=1                  the modem stops answering anything until its power is cycled with PWRKEY
    hang_after=N            once N payload bytes went up: hang (as above)
    late_prompt_ms=N        the next send's "> " prompt comes N ms late (once), as from a busy module under weak
                            coverage; bytes heard meanwhile wait in its UART buffer and are then payload
    stale_ok=1              the next send's "> " prompt follows an OK (once): the line as the driver sees it when an
                            earlier command's final came after that command's timeout
    late_read_ms=N          the next socket read's reply (AT+QIRD / AT+CIPRXGET=2) comes N ms late (once), as
                            from a busy module; commands heard meanwhile wait in its UART buffer, answered after
    false_urcs=P            with probability P, a real-looking but untrue URC before a reply: "closed",
                            "pdpdeact", "recv", RDY, a lost registration, a payload header whose bytes
                            never come (it swallows what follows), a stray "> " prompt

PWRKEY (`--pwrkey`, or pwrkey=True): a second pty where the board writes its PWRKEY pin level, one
line per change with the board's millisecond clock, "1 <ms>" pressed and "0 <ms>" released (the
virtual board's modem_pwrkey() with ZF_MODEM_PWRKEY set), so pulses are measured on the board's
time however late the emulator reads them.  A press held for the module's off time switches a
running modem off; a press of the on time switches an off modem on, and it boots.  The times
(PWRKEY_S of each dialect, from its hardware design guide) are multiplied by `time_scale` so tests
need not wait seconds.
"""

import os
import random
import select
import socket
import threading
import time

from host_sim.emulators import serial_pty
from host_sim.emulators.serial_emulator import SerialEmulator
from protocol import at

FAULTS = ("no_network", "lose_registration_after", "cme_errors", "close_after", "pdp_deact_after", "slow_ms",
          "garbage", "split", "stuck", "hang", "hang_after", "false_urcs", "late_prompt_ms",
          "late_read_ms", "stale_ok")
LINKS = 10
RX_BUFFER = 64 * 1024  # bytes a socket buffers in the modem before it stops reading from TCP


class _Link:
    def __init__(self, sock, push):
        self.sock = sock
        self.push = push
        self.buf = bytearray()
        self.open = True


class Modem(SerialEmulator):
    """The dialect-neutral modem; a subclass sets the class attributes below and adds its commands."""

    NAME = "modem-emulator"
    PACE_INPUT = True  # the module's UART receives at the line rate too

    dialect = ""
    PWRKEY_S = (0.0, 0.0)  # (on press, off press) at least, seconds
    PUSH_RX = False  # payloads pushed in URCs after power-up (else kept until read)
    VENDOR = MODEL = b""
    BOOT_URCS = (b"RDY",)  # what the module says once booted
    OPEN_URC = b""  # the socket open's completion URC, "<link>,<err>" follows
    OPEN_IN_USE = OPEN_FAILED = 0  # its <err> for a link in use / a connection that failed
    SEND_FAILED = b"ERROR"  # the final result of a send the socket did not take
    CLOSED_URC = b""  # the remote end closed link %d
    CLOSED_FREES_LINK = False  # True: the link is gone at once; False: readable until closed by command
    PDP_LOST_URC = b""
    RECV_NOTE = b""  # data waiting on link %d
    RECV_HEADER = b""  # pushed payload: link %d, %d bytes
    READ_CMD = b""  # the socket read command, as it begins after "AT"

    def __init__(self, connect=None, serve=None, baud=115200, faults=None, boot_s=0.3, outage_s=1.0,
                 seed=None, pwrkey=False, time_scale=1.0):
        self.target = connect  # (host, port): every socket goes there; None: where AT asks
        self.faults = dict(faults or {})
        self.boot_s = boot_s
        self.outage_s = outage_s
        self.rng = random.Random(seed)
        self.counters = {"resets": 0, "commands": 0, "opens": 0, "bytes_up": 0, "bytes_down": 0,
                         "cme_errors": 0, "faults_fired": 0, "power_offs": 0, "false_urcs": 0}
        self.log = []  # commands seen, for tests (bounded)
        self.tap = None  # tap(direction, data): every UART chunk, "board" heard or "modem" said (sim run --trace)
        self._lock = threading.RLock()
        self.pwrkey_fd = self.pwrkey_path = self._pwrkey_slave = None
        if pwrkey:
            self.pwrkey_fd, self._pwrkey_slave, self.pwrkey_path = serial_pty.open_raw_pty()
        self.time_scale = time_scale
        self.powered = True
        self._pressed_at = None
        self._pwrkey_buf = b""
        self._power_on()
        super().__init__(serve, baud)
        self.start()

    # -- state ------------------------------------------------------------------------------------

    def _power_on(self):
        self.echo = True
        self.links = {}
        self.pdp = False
        self.push_rx = self.PUSH_RX
        self.ready_at = time.monotonic() + self.boot_s
        self.outage_until = 0.0
        self._inbuf = bytearray()
        self._data_wait = None  # (link, remaining, collected) while a send's payload is arriving
        self._late = None  # (link, length) of a send whose prompt is still to come; input waits meanwhile
        self._held = None  # a command whose reply is still to come (fault late_read_ms); input waits meanwhile

    def registered(self):
        return not self.faults.get("no_network") and time.monotonic() >= self.outage_until

    def inject(self, name, value=1):
        if name not in FAULTS:
            raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(FAULTS)))
        with self._lock:
            self.faults[name] = value

    def clear(self, name):
        """Take fault `name` back (a no-op when it was not injected)."""
        with self._lock:
            self.faults.pop(name, None)

    def lose_network(self):
        """Registration lost with no signal (fault no_network): the PDP context and its sockets go, with
        the modem's URC, as in a coverage gap.  clear("no_network") brings the signal back."""
        with self._lock:
            self.faults["no_network"] = 1
            self._pdp_lost()

    def sending(self):
        """True while a send's payload is still arriving (the modem takes the next bytes as payload)."""
        return self._data_wait is not None or self._late is not None

    def socket_open(self):
        """True while one of its sockets is open (the board's link is up, as far as the modem knows)."""
        with self._lock:
            return any(link.open for link in self.links.values())

    def restart(self):
        """Power cycle: sockets and PDP gone, boots again; `stuck` clears (what a reset is for)."""
        with self._lock:
            for link in self.links.values():
                self._close_sock(link)
            self.faults.pop("stuck", None)
            self.counters["resets"] += 1
            self._power_on()

    def _on_pwrkey(self, data):
        """Level changes of the PWRKEY pin, one line each: "1 <board ms>" pressed, "0 <board ms>"
        released.  A press long enough, on the board's clock, switches the module off or on."""
        self._pwrkey_buf += data
        while b"\n" in self._pwrkey_buf:
            line, _, self._pwrkey_buf = self._pwrkey_buf.partition(b"\n")
            try:
                level, ms = line.split()
                at = int(ms) / 1000
            except ValueError:
                continue  # not a level change: ignored, as a pin would ignore noise
            if level == b"1":
                self._pressed_at = at
                continue
            if level != b"0" or self._pressed_at is None:
                continue
            held = (at - self._pressed_at) % (2**30 / 1000)  # ticks_ms wraps at 2**30 on the board
            self._pressed_at = None
            on_s, off_s = self.PWRKEY_S
            if self.powered and held >= off_s * self.time_scale:
                self.powered = False
                for link in self.links.values():
                    self._close_sock(link)
                self.links = {}
                self.counters["power_offs"] += 1
            elif not self.powered and held >= on_s * self.time_scale:
                self.powered = True
                self.faults.pop("hang", None)  # a power cycle is what cures a hung module
                self.restart()
                threading.Timer(self.boot_s, self._boot_banner).start()

    # -- output ---------------------------------------------------------------------------------

    def write(self, data):
        if self.tap is not None:
            self.tap("modem", data)
        if not self.faults.get("split"):
            return super().write(data)
        view = memoryview(data)
        while view:  # random small pieces with gaps: replies and URCs arrive split
            n = self.rng.randint(1, 7)
            if not super().write(view[:n]):
                return False
            view = view[n:]
            time.sleep(self.rng.uniform(0.0005, 0.004))
        return True

    def _garbage(self):
        p = self.faults.get("garbage", 0)
        if p and self.rng.random() < float(p):
            junk = bytes(self.rng.choice(b"!#$%&()*0123456789:;<=@ABCXYZ^_\x01\x7f\xfe\xff")
                         for _ in range(self.rng.randint(1, 40)))
            self.write(b"\r\n" + junk + b"\r\n")
            return True
        return False

    def _false_urc(self):
        p = self.faults.get("false_urcs", 0)
        if p and self.rng.random() < float(p):
            self.counters["false_urcs"] += 1
            self.write(self.rng.choice([
                b"\r\n" + self.CLOSED_URC % 0 + b"\r\n",
                b"\r\n" + self.PDP_LOST_URC + b"\r\n",
                b"\r\n" + self.RECV_NOTE % 0 + b"\r\n",
                b"\r\nRDY\r\n", b"\r\n+CEREG: 2\r\n", b"\r\n> ",
                b"\r\n" + self.RECV_HEADER % (0, 24) + b"\r\n",
            ]))

    def _send(self, data):
        slow = self.faults.get("slow_ms")
        if slow:
            time.sleep(int(slow) / 1000.0)
        self._garbage()
        self._false_urc()
        self.write(data)

    def _reply(self, *lines, final=b"OK"):
        out = b"".join(b"\r\n" + line + b"\r\n" for line in lines)
        if final is not None:
            out += b"\r\n" + final + b"\r\n"
        self._send(out)

    def _urc(self, line):
        self._send(b"\r\n" + line + b"\r\n")

    # -- the command interpreter -------------------------------------------------------------------

    def received(self, data):
        if self.tap is not None:
            self.tap("board", data)
        if time.monotonic() < self.ready_at or not self.powered or self.faults.get("hang"):
            return  # booting, switched off or hung: nobody listens on the UART
        self._inbuf += data
        while self._inbuf:
            if self._late is not None or self._held is not None:
                return  # busy before a late prompt or reply: what it hears waits in the UART buffer
            if self._data_wait is not None:
                link_id, left, got = self._data_wait
                take = bytes(self._inbuf[:left])
                del self._inbuf[: len(take)]
                got += take
                left -= len(take)
                if left:
                    self._data_wait = (link_id, left, got)
                    return
                self._data_wait = None
                self._payload(link_id, got)
                continue
            cr = self._inbuf.find(b"\r")
            if cr < 0:
                if len(self._inbuf) > 1024:
                    del self._inbuf[:]  # a runaway line: a real modem discards it too
                return
            line = bytes(self._inbuf[:cr]).strip(b"\n ")
            del self._inbuf[: cr + 1]
            if self._inbuf[:1] == b"\n":
                del self._inbuf[:1]
            if line:
                if self.echo:
                    self.write(line + b"\r")
                self._command(line)

    def _command(self, line):
        self.counters["commands"] += 1
        if len(self.log) < 10000:
            self.log.append(line.decode("latin-1"))
        upper = line.upper()
        if not upper.startswith(b"AT"):
            return self._reply(final=b"ERROR")
        if self.READ_CMD and upper[2:].startswith(self.READ_CMD) and "late_read_ms" in self.faults:
            self.counters["faults_fired"] += 1
            self._held = line
            threading.Timer(int(self.faults.pop("late_read_ms")) / 1000.0, self._late_reply, (line,)).start()
            return
        self._run(line)

    def _late_reply(self, line):
        """The reply of fault late_read_ms, then the commands heard meanwhile, in order."""
        with self._lock:
            if self._held is not line or self.stopping():
                return  # restarted meanwhile: that command is gone
            self._held = None
            self._run(line)
            self.received(b"")

    def _run(self, line):
        upper = line.upper()
        body = line[2:]
        key = upper[2:]
        if key in (b"", b"E0", b"E1"):
            if key == b"E0":
                self.echo = False
            elif key == b"E1":
                self.echo = True
            return self._reply()
        if self.faults.get("cme_errors"):
            self.faults["cme_errors"] = int(self.faults["cme_errors"]) - 1
            self.counters["cme_errors"] += 1
            return self._reply(final=b"+CME ERROR: 100")
        for name, handler in self._table():
            if key.startswith(name):
                return handler(body[len(name):])
        return self._reply(final=b"ERROR")

    def _table(self):
        common = [(b"+CSQ", self._csq), (b"+CEREG?", self._reg(b"+CEREG")), (b"+CREG?", self._reg(b"+CREG")),
                  (b"+CGREG?", self._reg(b"+CGREG")), (b"+CFUN=1,1", self._cfun_reset), (b"+CPIN?", self._cpin),
                  (b"+CGDCONT=", self._ok), (b"I", self._ident)]
        return common + self.dialect_commands()

    def dialect_commands(self):
        """(command prefix after "AT", handler of the rest of the line) for the dialect's commands."""
        raise NotImplementedError

    def _ok(self, _args):
        self._reply()

    def _ident(self, _args):
        self._reply(b"Manufacturer: " + self.VENDOR, b"Model: " + self.MODEL)

    def _cpin(self, _args):
        self._reply(b"+CPIN: READY")

    def _csq(self, _args):
        self._reply(b"+CSQ: 21,99" if self.registered() else b"+CSQ: 99,99")

    def _reg(self, name):
        def handler(_args):
            self._reply(b"%s: 0,%d" % (name, 1 if self.registered() else 2))
        return handler

    def _cfun_reset(self, _args):
        self._reply()
        self.restart()
        # the module goes quiet while it boots, then says so
        threading.Timer(self.boot_s, self._boot_banner).start()

    def _boot_banner(self):
        if not self.stopping():
            with self._lock:
                for line in self.BOOT_URCS:
                    self._urc(line)

    # -- sockets ------------------------------------------------------------------------------------

    def _open_params(self, p):
        """(link id, protocol, host, port, push) from the parameters of the dialect's open command."""
        raise NotImplementedError

    def _open(self, args):
        p = at.params(args, b"")
        try:
            link_id, proto, host, port, push = self._open_params(p)
            assert isinstance(link_id, int) and 0 <= link_id < LINKS and proto == b"TCP" and isinstance(port, int)
        except (AssertionError, IndexError, TypeError):
            return self._reply(final=b"ERROR")
        if link_id in self.links:
            self._reply()
            return self._urc(b"%s %d,%d" % (self.OPEN_URC, link_id, self.OPEN_IN_USE))
        self._reply()
        self.counters["opens"] += 1
        if not self.pdp or self.faults.get("stuck"):
            return self._urc(b"%s %d,%d" % (self.OPEN_URC, link_id, self.OPEN_FAILED))
        target = self.target or (host.decode(), port)
        try:
            sock = socket.create_connection(target, timeout=2)
        except OSError:
            return self._urc(b"%s %d,%d" % (self.OPEN_URC, link_id, self.OPEN_FAILED))
        sock.setblocking(False)
        self.links[link_id] = _Link(sock, push)
        self._urc(b"%s %d,0" % (self.OPEN_URC, link_id))

    def _link_arg(self, args):
        p = at.params(args, b"")
        if not p or not isinstance(p[0], int):
            return None, p
        return p[0], p

    def _sendcmd(self, args):
        link_id, p = self._link_arg(args)
        link = self.links.get(link_id)
        if link is None or not link.open or len(p) < 2 or not isinstance(p[1], int) or not 0 < p[1] <= 1500:
            return self._reply(final=b"ERROR")
        if self.faults.pop("stale_ok", None):
            self.counters["faults_fired"] += 1
            self._send(b"\r\nOK\r\n")
        late = self.faults.pop("late_prompt_ms", None)
        if late is not None:
            self.counters["faults_fired"] += 1
            self._late = (link_id, p[1])
            threading.Timer(int(late) / 1000.0, self._late_prompt, (self._late,)).start()
            return
        self._send(b"\r\n> ")
        self._data_wait = (link_id, p[1], b"")

    def _late_prompt(self, late):
        """The prompt of fault late_prompt_ms: then the payload is what was heard meanwhile and after."""
        with self._lock:
            if self._late is not late or self.stopping():
                return  # restarted meanwhile: that send is gone
            self._late = None
            self._send(b"\r\n> ")
            self._data_wait = (late[0], late[1], b"")
            self.received(b"")

    def _payload(self, link_id, data):
        link = self.links.get(link_id)
        if link is None or not link.open:
            return self._reply(final=self.SEND_FAILED)
        try:
            link.sock.sendall(data)
        except OSError:
            self._remote_closed(link_id, link)
            return self._reply(final=self.SEND_FAILED)
        self.counters["bytes_up"] += len(data)
        self._sent(link_id, len(data))
        self._after_bytes()

    def _sent(self, link_id, n):
        """The reply once a send's `n` payload bytes went into socket `link_id`."""
        raise NotImplementedError

    def _after_bytes(self):
        up = self.counters["bytes_up"]
        for name in ("close_after", "pdp_deact_after", "lose_registration_after", "hang_after"):
            limit = self.faults.get(name)
            if limit is None or up < int(limit):
                continue
            del self.faults[name]
            self.counters["faults_fired"] += 1
            if name == "hang_after":
                self.faults["hang"] = 1
            elif name == "close_after":
                for link_id, link in list(self.links.items()):
                    if link.open:
                        self._remote_closed(link_id, link)
            else:
                if name == "lose_registration_after":
                    self.outage_until = time.monotonic() + self.outage_s
                self._pdp_lost()

    def _pdp_lost(self):
        self.pdp = False
        self._drop_all(None)
        self._urc(self.PDP_LOST_URC)

    def _drop_all(self, reason):
        for link_id, link in list(self.links.items()):
            self._close_sock(link)
            del self.links[link_id]

    def _close_sock(self, link):
        link.open = False
        try:
            link.sock.close()
        except OSError:
            pass

    def _remote_closed(self, link_id, link):
        self._close_sock(link)
        if self.CLOSED_FREES_LINK:
            self.links.pop(link_id, None)
        self._urc(self.CLOSED_URC % link_id)

    def _read_link(self, link, want):
        """Take up to `want` (at most 1500) bytes the modem holds for `link`, counted as gone down."""
        data = bytes(link.buf[: min(want, 1500)])
        del link.buf[: len(data)]
        self.counters["bytes_down"] += len(data)
        return data

    # -- from the network -----------------------------------------------------------------------------

    def _on_socket(self, link_id, link):
        try:
            data = link.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._remote_closed(link_id, link)
            return
        slow = self.faults.get("slow_ms")
        if slow:
            time.sleep(int(slow) / 1000.0)
        if link.push:
            for i in range(0, len(data), 1500):
                piece = data[i : i + 1500]
                self._send(b"\r\n" + self.RECV_HEADER % (link_id, len(piece)) + b"\r\n" + piece)
                self.counters["bytes_down"] += len(piece)
            return
        was_empty = not link.buf
        link.buf += data
        if was_empty:
            note = self.RECV_NOTE % link_id
            if self._garbage():
                note = note[: self.rng.randint(1, len(note) - 1)] + b"\x00#"  # garbled: the driver must poll
            self._urc(note)

    # -- the loop -------------------------------------------------------------------------------------

    def poll(self):
        """Wait for the UART, the PWRKEY pin and every socket with room in its buffer at once."""
        with self._lock:
            socks = {link.sock: (i, link) for i, link in self.links.items()
                     if link.open and len(link.buf) < RX_BUFFER}
        line = self.fileno()
        try:
            extra = [self.pwrkey_fd] if self.pwrkey_fd is not None else []
            ready, _, _ = select.select([line] + extra + list(socks), [], [], self.POLL_S)
        except (OSError, ValueError):
            time.sleep(0.01)
            return
        with self._lock:
            for r in ready:
                if r == line:
                    data = self.read()
                    if data:
                        self.received(data)
                elif r == self.pwrkey_fd:
                    try:
                        self._on_pwrkey(os.read(self.pwrkey_fd, 64))
                    except OSError:
                        time.sleep(0.02)
                elif r in socks:
                    self._on_socket(*socks[r])

    def close(self):
        super().close()
        for link in self.links.values():
            self._close_sock(link)
        serial_pty.close_fds(self.pwrkey_fd, self._pwrkey_slave)
