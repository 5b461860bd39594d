"""A cellular modem as its UART shows it, in the SIMCom (SIM7600/A76xx) or Quectel (EC800N/EC200/BG95)
AT dialect, with its TCP sockets bridged to real TCP (on loopback in the tests).

The firmware's modem driver talks to this exactly as to the module: AT commands in, replies, URCs and
raw socket payloads out, paced at the baud rate the firmware set on the pty (a real UART paces itself
when `--serve DEVICE` drives a USB-serial adapter).  What it implements is the subset the driver and
common firmware use, with the reply formats of the manuals cited in firmware/drivers/modem.py:
registration (CREG/CEREG/CGREG, CSQ), PDP (CGDCONT + NETOPEN / QICSGP + QIACT), one socket per link
id (CIPOPEN/QIOPEN, CIPSEND/QISEND, CIPRXGET/QIRD or pushed +RECEIVE / +QIURC "recv", CIPCLOSE/QICLOSE)
and restarts (AT+CFUN=1,1, AT+CRESET, AT+QPOWD).

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
    false_urcs=P            with probability P, a real-looking but untrue URC before a reply: "closed",
                            "pdpdeact", "recv", RDY, a lost registration, a payload header whose bytes
                            never come (it swallows what follows), a stray "> " prompt

PWRKEY (`--pwrkey`, or pwrkey=True): a second pty where the board writes its PWRKEY pin level, one
line per change with the board's millisecond clock, "1 <ms>" pressed and "0 <ms>" released (the
virtual board's modem_pwrkey() with ZF_MODEM_PWRKEY set), so pulses are measured on the board's
time however late the emulator reads them.  A press held for the module's off time switches a
running modem off; a press of the on time switches an off modem on, and it boots.  Times from the
hardware design guides (SIM7600: on >= 0.5 s, off >= 2.5 s; EC800N/EC200: on >= 0.5 s, off >= 0.65
s), multiplied by `time_scale` so tests need not wait seconds.
"""

import json
import os
import random
import select
import socket
import sys
import threading
import time
import tty

from host_sim.emulators import serial_pty
from protocol import at

DIALECTS = ("simcom", "quectel")
FAULTS = ("no_network", "lose_registration_after", "cme_errors", "close_after", "pdp_deact_after", "slow_ms",
          "garbage", "split", "stuck", "hang", "hang_after", "false_urcs")
PWRKEY_S = {"simcom": (0.5, 2.5), "quectel": (0.5, 0.65)}  # (on press, off press) at least, seconds
LINKS = 10
RX_BUFFER = 64 * 1024  # bytes a socket buffers in the modem before it stops reading from TCP


class _Link:
    def __init__(self, sock, push):
        self.sock = sock
        self.push = push
        self.buf = bytearray()
        self.open = True


class ModemEmulator:
    def __init__(self, dialect, connect=None, serve=None, baud=115200, faults=None, boot_s=0.3, outage_s=1.0,
                 seed=None, pwrkey=False, time_scale=1.0):
        if dialect not in DIALECTS:
            raise ValueError("dialect must be one of %s" % ", ".join(DIALECTS))
        self.dialect = dialect
        self.target = connect  # (host, port): every socket goes there; None: where AT asks
        self.faults = dict(faults or {})
        self.boot_s = boot_s
        self.outage_s = outage_s
        self.rng = random.Random(seed)
        self.counters = {"resets": 0, "commands": 0, "opens": 0, "bytes_up": 0, "bytes_down": 0,
                         "cme_errors": 0, "faults_fired": 0, "power_offs": 0, "false_urcs": 0}
        self.log = []  # commands seen, for tests (bounded)
        self._stop = False
        self._lock = threading.RLock()
        if serve:
            self.fd = os.open(serve, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self.fd)
            self._slave = None
            self.path = serve
            baud_of = None
        else:
            self.fd, self._slave, self.path = serial_pty.open_raw_pty()
            baud_of = lambda: serial_pty.line_baud(self._slave, default=baud)  # noqa: E731
        self.pwrkey_fd = self.pwrkey_path = self._pwrkey_slave = None
        if pwrkey:
            self.pwrkey_fd, self._pwrkey_slave, self.pwrkey_path = serial_pty.open_raw_pty()
        self.time_scale = time_scale
        self.powered = True
        self._pressed_at = None
        self._pwrkey_buf = b""
        self._out_pacer = serial_pty.Pacer(baud_of) if baud_of else None
        self._in_pacer = serial_pty.Pacer(baud_of) if baud_of else None
        self._power_on()
        self._thread = None

    # -- state ------------------------------------------------------------------------------------

    def _power_on(self):
        self.echo = True
        self.links = {}
        self.pdp = False
        self.push_rx = self.dialect == "simcom"  # SIMCom default: +RECEIVE; AT+CIPRXGET=1 switches to pull
        self.ready_at = time.monotonic() + self.boot_s
        self.outage_until = 0.0
        self._inbuf = bytearray()
        self._data_wait = None  # (link, remaining, collected) while a send's payload is arriving

    def registered(self):
        return not self.faults.get("no_network") and time.monotonic() >= self.outage_until

    def inject(self, name, value=1):
        if name not in FAULTS:
            raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(FAULTS)))
        with self._lock:
            self.faults[name] = value

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
            on_s, off_s = PWRKEY_S[self.dialect]
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

    def _write(self, data):
        if not self.faults.get("split"):
            serial_pty.write_all(self.fd, data, self._out_pacer)
            return
        view = memoryview(data)
        while view:  # random small pieces with gaps: replies and URCs arrive split
            n = self.rng.randint(1, 7)
            if not serial_pty.write_all(self.fd, view[:n], self._out_pacer):
                return
            view = view[n:]
            time.sleep(self.rng.uniform(0.0005, 0.004))

    def _garbage(self):
        p = self.faults.get("garbage", 0)
        if p and self.rng.random() < float(p):
            junk = bytes(self.rng.choice(b"!#$%&()*0123456789:;<=@ABCXYZ^_\x01\x7f\xfe\xff")
                         for _ in range(self.rng.randint(1, 40)))
            self._write(b"\r\n" + junk + b"\r\n")
            return True
        return False

    def _false_urc(self):
        p = self.faults.get("false_urcs", 0)
        if p and self.rng.random() < float(p):
            self.counters["false_urcs"] += 1
            simcom = self.dialect == "simcom"
            self._write(self.rng.choice([
                b"\r\n+IPCLOSE: 0,1\r\n" if simcom else b'\r\n+QIURC: "closed",0\r\n',
                b"\r\n+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n" if simcom else b'\r\n+QIURC: "pdpdeact",1\r\n',
                b"\r\n+CIPRXGET: 1,0\r\n" if simcom else b'\r\n+QIURC: "recv",0\r\n',
                b"\r\nRDY\r\n", b"\r\n+CEREG: 2\r\n", b"\r\n> ",
                b"\r\n+RECEIVE,0,24\r\n" if simcom else b'\r\n+QIURC: "recv",0,24\r\n',
            ]))

    def _send(self, data):
        slow = self.faults.get("slow_ms")
        if slow:
            time.sleep(int(slow) / 1000.0)
        self._garbage()
        self._false_urc()
        self._write(data)

    def _reply(self, *lines, final=b"OK"):
        out = b"".join(b"\r\n" + line + b"\r\n" for line in lines)
        if final is not None:
            out += b"\r\n" + final + b"\r\n"
        self._send(out)

    def _urc(self, line):
        self._send(b"\r\n" + line + b"\r\n")

    # -- the command interpreter -------------------------------------------------------------------

    def _on_device_bytes(self, data):
        if time.monotonic() < self.ready_at or not self.powered or self.faults.get("hang"):
            return  # booting, switched off or hung: nobody listens on the UART
        self._inbuf += data
        while self._inbuf:
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
                    self._write(line + b"\r")
                self._command(line)

    def _command(self, line):
        self.counters["commands"] += 1
        if len(self.log) < 10000:
            self.log.append(line.decode("latin-1"))
        upper = line.upper()
        if not upper.startswith(b"AT"):
            return self._reply(final=b"ERROR")
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
        if self.dialect == "simcom":
            return common + [
                (b"+CIPRXGET=2,", self._ciprxget_read), (b"+CIPRXGET=", self._ciprxget_mode),
                (b"+NETOPEN?", self._netopen_query), (b"+NETOPEN", self._netopen), (b"+NETCLOSE", self._netclose),
                (b"+CIPOPEN=", self._open), (b"+CIPSEND=", self._sendcmd), (b"+CIPCLOSE=", self._closecmd),
                (b"+CRESET", self._cfun_reset)]
        return common + [
            (b"+QICSGP=", self._ok), (b"+QIACT?", self._qiact_query), (b"+QIACT=", self._qiact),
            (b"+QIDEACT=", self._qideact), (b"+QIOPEN=", self._open), (b"+QISEND=", self._sendcmd),
            (b"+QIRD=", self._qird), (b"+QICLOSE=", self._closecmd), (b"+QPOWD", self._cfun_reset)]

    def _ok(self, _args):
        self._reply()

    def _ident(self, _args):
        model = b"SIM7600G-H" if self.dialect == "simcom" else b"EC800N"
        vendor = b"SIMCOM INCORPORATED" if self.dialect == "simcom" else b"Quectel"
        self._reply(b"Manufacturer: " + vendor, b"Model: " + model)

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
        if not self._stop:
            with self._lock:
                self._urc(b"RDY")
                if self.dialect == "simcom":
                    self._urc(b"+CPIN: READY")
                    self._urc(b"PB DONE")

    # -- PDP ----------------------------------------------------------------------------------------

    def _netopen_query(self, _args):
        self._reply(b"+NETOPEN: %d" % (1 if self.pdp else 0))

    def _netopen(self, _args):
        if self.pdp:
            return self._reply(b"+IP ERROR: Network is already opened", final=b"ERROR")
        self._reply()
        self.pdp = self.registered()
        self._urc(b"+NETOPEN: %d" % (0 if self.pdp else 1))

    def _netclose(self, _args):
        self._drop_all(None)
        was = self.pdp
        self.pdp = False
        self._reply()
        self._urc(b"+NETCLOSE: %d" % (0 if was else 2))

    def _qiact_query(self, _args):
        lines = [b'+QIACT: 1,1,1,"10.64.0.2"'] if self.pdp else []
        self._reply(*lines)

    def _qiact(self, _args):
        if self.pdp:
            return self._reply()
        if not self.registered():
            return self._reply(final=b"ERROR")
        self.pdp = True
        self._reply()

    def _qideact(self, _args):
        self._drop_all(None)
        self.pdp = False
        self._reply()

    def _ciprxget_mode(self, args):
        p = at.params(args, b"")
        if not p or p[0] not in (0, 1):
            return self._reply(final=b"ERROR")
        self.push_rx = p[0] == 0
        self._reply()

    # -- sockets ------------------------------------------------------------------------------------

    def _open(self, args):
        p = at.params(args, b"")
        try:
            if self.dialect == "simcom":  # <link>,"TCP","host",port
                link_id, proto, host, port = p[0], p[1], p[2], p[3]
                push = self.push_rx
            else:  # <ctx>,<id>,"TCP","host",port[,local,mode]
                link_id, proto, host, port = p[1], p[2], p[3], p[4]
                push = len(p) > 6 and p[6] == 1
            assert isinstance(link_id, int) and 0 <= link_id < LINKS and proto == b"TCP" and isinstance(port, int)
        except (AssertionError, IndexError, TypeError):
            return self._reply(final=b"ERROR")
        urc = b"+CIPOPEN:" if self.dialect == "simcom" else b"+QIOPEN:"
        if link_id in self.links:
            code = 4 if self.dialect == "simcom" else 563  # link in use / socket identity used
            self._reply()
            return self._urc(b"%s %d,%d" % (urc, link_id, code))
        self._reply()
        self.counters["opens"] += 1
        if not self.pdp or self.faults.get("stuck"):
            return self._urc(b"%s %d,%d" % (urc, link_id, 1 if self.dialect == "simcom" else 566))
        target = self.target or (host.decode(), port)
        try:
            sock = socket.create_connection(target, timeout=2)
        except OSError:
            return self._urc(b"%s %d,%d" % (urc, link_id, 1 if self.dialect == "simcom" else 566))
        sock.setblocking(False)
        self.links[link_id] = _Link(sock, push)
        self._urc(b"%s %d,0" % (urc, link_id))

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
        self._send(b"\r\n> ")
        self._data_wait = (link_id, p[1], b"")

    def _payload(self, link_id, data):
        link = self.links.get(link_id)
        if link is None or not link.open:
            return self._reply(final=b"SEND FAIL" if self.dialect == "quectel" else b"ERROR")
        try:
            link.sock.sendall(data)
        except OSError:
            self._remote_closed(link_id, link)
            return self._reply(final=b"SEND FAIL" if self.dialect == "quectel" else b"ERROR")
        self.counters["bytes_up"] += len(data)
        if self.dialect == "quectel":
            self._reply(final=b"SEND OK")
        else:
            self._reply()
            self._urc(b"+CIPSEND: %d,%d,%d" % (link_id, len(data), len(data)))
        self._after_bytes()

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
        if self.dialect == "simcom":
            self._urc(b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY")
        else:
            self._urc(b'+QIURC: "pdpdeact",1')

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
        if self.dialect == "simcom":
            self.links.pop(link_id, None)  # SIMCom frees the link at once
            self._urc(b"+IPCLOSE: %d,1" % link_id)
        else:  # Quectel keeps the buffered data readable until AT+QICLOSE
            self._urc(b'+QIURC: "closed",%d' % link_id)

    def _closecmd(self, args):
        link_id, _ = self._link_arg(args)
        link = self.links.pop(link_id, None)
        if self.dialect == "simcom":
            if link is None:
                self._reply(final=b"ERROR")
                return
            self._close_sock(link)
            self._reply()
            self._urc(b"+CIPCLOSE: %d,0" % link_id)
        else:
            if link is not None:
                self._close_sock(link)
            self._reply()

    def _ciprxget_read(self, args):
        p = at.params(args, b"")
        if not p or len(p) < 2 or not isinstance(p[0], int) or not isinstance(p[1], int):
            return self._reply(final=b"ERROR")
        link = self.links.get(p[0])
        if link is None:
            return self._reply(final=b"ERROR")
        if not link.buf:
            return self._reply(b"+IP ERROR: No data", final=b"ERROR")
        data = bytes(link.buf[: min(p[1], 1500)])
        del link.buf[: len(data)]
        self._send(b"\r\n+CIPRXGET: 2,%d,%d,%d\r\n" % (p[0], len(data), len(link.buf)) + data + b"\r\nOK\r\n")
        self.counters["bytes_down"] += len(data)

    def _qird(self, args):
        link_id, p = self._link_arg(args)
        link = self.links.get(link_id)
        if link is None:
            return self._reply(final=b"ERROR")
        want = p[1] if len(p) > 1 and isinstance(p[1], int) else 1500
        data = bytes(link.buf[: min(want, 1500)])
        del link.buf[: len(data)]
        self._send(b"\r\n+QIRD: %d\r\n" % len(data) + data + b"\r\n\r\nOK\r\n")
        self.counters["bytes_down"] += len(data)

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
                header = b"+RECEIVE,%d,%d" % (link_id, len(piece)) if self.dialect == "simcom" else \
                    b'+QIURC: "recv",%d,%d' % (link_id, len(piece))
                self._send(b"\r\n" + header + b"\r\n" + piece)
                self.counters["bytes_down"] += len(piece)
            return
        was_empty = not link.buf
        link.buf += data
        if was_empty:
            note = b"+CIPRXGET: 1,%d" % link_id if self.dialect == "simcom" else b'+QIURC: "recv",%d' % link_id
            if self._garbage():
                note = note[: self.rng.randint(1, len(note) - 1)] + b"\x00#"  # garbled: the driver must poll
            self._urc(note)

    # -- the loop -------------------------------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self.run, name="modem-emulator", daemon=True)
        self._thread.start()
        return self

    def run(self):
        while not self._stop:
            with self._lock:
                socks = {link.sock: (i, link) for i, link in self.links.items()
                         if link.open and len(link.buf) < RX_BUFFER}
            try:
                extra = [self.pwrkey_fd] if self.pwrkey_fd is not None else []
                ready, _, _ = select.select([self.fd] + extra + list(socks), [], [], 0.05)
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
            with self._lock:
                for r in ready:
                    if r == self.fd:
                        try:
                            data = os.read(self.fd, 256)
                        except BlockingIOError:
                            continue
                        except OSError:
                            time.sleep(0.02)  # the device side is closed; a reopen brings it back
                            continue
                        if self._in_pacer is not None:
                            self._in_pacer.wait(len(data))
                        self._on_device_bytes(data)
                    elif r == self.pwrkey_fd:
                        try:
                            self._on_pwrkey(os.read(self.pwrkey_fd, 64))
                        except OSError:
                            time.sleep(0.02)
                    elif r in socks:
                        self._on_socket(*socks[r])

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=2)
        for link in self.links.values():
            self._close_sock(link)
        for fd in (self.fd, self._slave, self.pwrkey_fd, self._pwrkey_slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def parse_faults(items):
    faults = {}
    for item in items or ():
        name, _, value = item.partition("=")
        if name not in FAULTS:
            raise SystemExit("unknown fault %r (known: %s)" % (name, ", ".join(FAULTS)))
        faults[name] = float(value) if "." in value else int(value or 1)
    return faults


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(args):
    emu = ModemEmulator(args.dialect, connect=parse_hostport(args.connect) if args.connect else None,
                        serve=args.serve, baud=args.baud, faults=parse_faults(args.fault), pwrkey=args.pwrkey)
    first = {"port": emu.path}
    if emu.pwrkey_path:
        first["pwrkey"] = emu.pwrkey_path
    print(json.dumps(first), flush=True)
    emu.start()
    try:
        for line in sys.stdin:  # "FAULT[=VALUE]" per line injects a fault while running
            line = line.strip()
            if line:
                name, _, value = line.partition("=")
                try:
                    emu.inject(name, float(value) if "." in value else int(value or 1))
                except ValueError as e:
                    print(json.dumps({"error": str(e)}), flush=True)
        while True:  # stdin closed (e.g. < /dev/null): serve until killed
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def add_arguments(parser):
    parser.add_argument("--dialect", choices=DIALECTS, required=True)
    parser.add_argument("--connect", metavar="HOST:PORT", help="bridge every socket to this TCP address")
    parser.add_argument("--serve", metavar="DEVICE", help="serve this serial port instead of creating a pty")
    parser.add_argument("--baud", type=int, default=115200, help="line rate before the firmware sets one")
    parser.add_argument("--pwrkey", action="store_true",
                        help="also open a pty for the board's PWRKEY pin (ZF_MODEM_PWRKEY of the virtual board)")
    parser.add_argument("--fault", action="append", metavar="NAME[=VALUE]", help="inject a fault: " + ", ".join(FAULTS))
