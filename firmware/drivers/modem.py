"""Cellular modem on a UART, driven by AT commands: what SIMCom (SIM7600, A76xx) and Quectel (EC800N,
EC200, BG95) modules share.  Each dialect's own commands are a subclass in its own module
(firmware/drivers/modem_simcom.py, modem_quectel.py); construct the one the configuration names.

One TCP socket (link 0) to the collector, with the transport interface of firmware/transport.py:
`connect()`, `write(data)`, `read_into(buf, timeout_ms)`, `close()`, `connected`, `signal`,
`registration`.  Nothing here raises to the caller: every failure (no answer, +CME ERROR, no network,
socket closed, PDP context lost) leaves `connected` False with the reason in `last_error`, and the
uplink simply calls `connect()` again after its backoff.  After MAX_FAILURES connect attempts in a row
fail, the modem is power-cycled: with the board's PWRKEY pin when it has one (board.modem_pwrkey()),
otherwise with AT+CFUN=1,1 (full functionality with a reset, in both dialects' manuals).

How bytes flow.  A background task reads the UART and feeds protocol.at.AtReader; final results wake
the command in flight, URCs update the link state, and socket payloads go into one preallocated ring
buffer (firmware/ringbuf.py).  Both dialects are used in their "pull" receive mode: the modem keeps
incoming data and only announces it (+CIPRXGET: 1,<link> / +QIURC: "recv",<id>), and the driver
fetches at most what the ring has room for (AT+CIPRXGET=2,<link>,<n> / AT+QIRD=<id>,<n>).  RAM stays
bounded however fast the collector talks, and a lost or garbled announcement only delays data:
read_into() also polls every POLL_MS.  Pushed payload headers (+RECEIVE / +QIURC "recv" with a
length) are not expected in this mode and are not trusted: a stray or garbled one must not swallow
the reply bytes after it.

"SEND OK" (Quectel) or OK after the payload (SIMCom) only means the modem took the bytes into its
buffer, not that the collector got them: only the link protocol's acknowledgement frees records.

A send given up on.  Both dialects' sends name the length (AT+CIPSEND=0,<len> / AT+QISEND=0,<len>):
after the prompt the module takes exactly <len> bytes as payload.  Quectel's "BG95&BG77&BG600L Series
TCP/IP Application Note" (AT+QISEND) says so of the fixed-length form ("until the data length equals
<send_length>") and gives Ctrl+Z to end and Esc to cancel only for the form without a length; SIMCom's
"SIM900" and "SIM7000 Series AT Command Manual" (AT+CIPSEND) likewise tie Ctrl+Z and ESC to the send
without a length, and the SIM7600's AT+CIPSEND=<link>,<length> is taken to behave as theirs.  None
names a timeout for the data.  So a prompt that comes after T_SEND (a
busy module, weak coverage) would make the driver's next commands the payload.  When the prompt does
not come in time the driver writes <len> bytes of 0x00 instead, which end the send whether or not the
module would have taken ESC; 0x00 is the link protocol's frame delimiter, so the collector reads no
frame from them (protocol/frame.py).  Then it waits for that send's final result and for a quiet UART
with no command pending, so a late final is not taken as the answer to a later command.  The socket is
closed and opened again by the reconnect, so what the filler made of the old one does not matter.

Late finals.  A final that comes within LATE_MS of its command's timeout is still that command's answer:
its bytes may already be in the UART buffer when the timeout fires, with the reader task not yet run.
Later than that nothing ties a final to its command, and it would answer the next one.  A send is the one
command where the driver can tell: its answer is "> " or an error, so an OK or SEND OK while it waits for
the prompt is an earlier command's, and is passed over.

Command syntax and replies relied on by both dialects (3GPP TS 27.007 for CREG/CEREG/CSQ/CFUN; each
dialect module cites its own manual):
  both      AT+CSQ -> +CSQ: <rssi 0..31, 99 unknown>,<ber>; AT+CEREG? / AT+CREG? -> +CEREG: <n>,<stat>
            (stat 1 home, 5 roaming); URC +CEREG: <stat> when n=1
"""

import asyncio
import time

from micropython import const

from firmware.ringbuf import RingBuffer
from protocol import at

TIMEOUT = const(-1)  # pseudo final result: no final result in time

MAX_FAILURES = const(3)  # connect attempts in a row before a power cycle
POLL_MS = const(500)  # read_into() asks the modem for data at least this often while waiting
SEND_CHUNK = const(1024)  # below both dialects' per-send maximum (SIMCom 1500, Quectel 1460)
RX_RING = const(2048)
_MAX_LINES = const(8)  # intermediate reply lines kept for the command in flight
_FILLER = const(64)  # the 0x00 bytes written at a time after a send given up on
QUIET_MS = const(200)  # no byte from the modem for this long: an abandoned send's late replies are over
LATE_MS = const(300)  # a final this late after its command's timeout is still that command's answer

# Timeouts per command class, in ms.  The manuals' maxima are long (QIACT and QIOPEN: 150 s); a
# terminal would rather retry soon, and the uplink's backoff spaces the retries.
T_SHORT = 1000
T_PDP = 30000
T_OPEN = 30000
T_SEND = 10000
T_CLOSE = 5000
BOOT_MS = 20000  # time a power-cycled modem may take before it answers AT again
AT_PROBE_MS = 500  # wait for the OK of a bare "AT" (3 tries before the modem counts as not answering)

PWRKEY_GAP_MS = 2000  # after each pulse: the module shuts down / starts its boot

# URCs are recognised whatever the dialect: a line that means this in either dialect means it here too.
_CLOSED_URCS = (b"+IPCLOSE:", b'+QIURC: "closed"', b"CLOSED", b"+CIPCLOSE:")
_PDP_URCS = (b"+CIPEVENT: NETWORK CLOSED", b'+QIURC: "pdpdeact"', b"+PDP: DEACT")
_BOOT_URCS = (b"RDY", b"PB DONE", b"*ATREADY:")
_DATA_URCS = (b"+CIPRXGET: 1,", b'+QIURC: "recv"')


class Modem:
    """The shared driver; a dialect subclass supplies the class attributes below and the link-up,
    socket-close and read-reply steps."""

    dialect = ""
    PWRKEY_MS = (0, 0)  # (off pulse, on pulse) of the module's PWRKEY, from its hardware design guide
    SEND = b""  # the send command for link 0 with its CR, %d for the length
    READ = b""  # the read command for link 0, with %d for the most bytes wanted
    READ_REPLY = b""  # the prefix of the read command's reply line

    def __init__(self, uart, host, port, apn="", pwrkey=None, rx_size=RX_RING):
        self.host = host
        self.port = port
        self.apn = apn
        self.pwrkey = pwrkey
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._at = at.AtReader(push=False)  # pull mode: only read replies carry payloads
        self._chunk = bytearray(128)
        self._filler = bytearray(_FILLER)
        self._heard = time.ticks_ms()  # when the modem last sent a byte
        self._ring = RingBuffer(rx_size)
        self._rx = asyncio.Event()
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._pending = False
        self._want_prompt = False
        self._final = (TIMEOUT, None)
        self._lines = []
        self._urc_prefix = None  # the completion URC a command waits for after its OK
        self._urc_params = None
        self._urc = asyncio.Event()
        self._task = None
        self._pdp_lost = False
        self._poll_at = 0
        self._reading = False  # a read command (AT+CIPRXGET=2 / AT+QIRD) is in flight
        self.rx_pending = False
        self.connected = False
        self.signal = None  # +CSQ rssi 0..31 (about -113 + 2 * rssi dBm), None when unknown
        self.registration = None  # +CEREG/+CREG stat
        self.last_error = ""
        self.failures = 0
        self.power_cycles = 0
        self.timeouts = 0
        self.cme_errors = 0
        self.stray = 0  # payload bytes that arrived outside a read command, dropped
        self.overruns = 0  # payload bytes dropped because the ring was full (a modem sending more than asked)

    # -- the reader task ------------------------------------------------------------------------

    def start(self):
        if self._task is None:
            self._task = asyncio.create_task(self._pump())

    async def _pump(self):
        chunk = self._chunk
        while True:
            try:
                n = await self._reader.readinto(chunk)
                if not n:
                    await asyncio.sleep_ms(5)
                    continue
                self._heard = time.ticks_ms()
                for ev in self._at.feed(memoryview(chunk)[:n]):
                    self._event(ev)
            except Exception as e:  # a UART error or a reply we mis-parse must not stop the reader
                self.last_error = "reader: %r" % (e,)
                await asyncio.sleep_ms(50)

    def _event(self, ev):
        kind = ev[0]
        if kind == at.DATA:
            if self._reading:
                self._store(ev[2])
            else:  # a payload nobody asked for (a garbled reply): not socket data
                self.stray += len(ev[2])
        elif kind == at.PROMPT:
            if self._pending and self._want_prompt:
                self._finish(at.PROMPT, None)
        elif kind == at.LINE:
            line = ev[1]
            if not self._urc_line(line) and self._pending and len(self._lines) < _MAX_LINES:
                self._lines.append(line)
        elif kind in at.FINALS:
            if kind == at.CME_ERROR:
                self.cme_errors += 1
            if self._want_prompt and (kind == at.OK or kind == at.SEND_OK):
                return  # a send is answered with "> " or an error: this is an earlier command's late final
            if self._pending:
                self._finish(kind, ev[1])

    def _finish(self, kind, code):
        self._final = (kind, code)
        self._pending = False
        self._done.set()

    def _urc_line(self, line):
        """Act on an unsolicited line; True when it is not part of a command's reply."""
        prefix = self._urc_prefix
        if prefix is not None and line.startswith(prefix):
            self._urc_params = at.params(line, prefix)
            self._urc.set()
            return not self._pending
        if line.startswith(b"+CEREG:") or line.startswith(b"+CREG:"):
            p = at.params(line, line[: line.find(b":") + 1])
            if self._pending:
                if p is not None and len(p) >= 2 and type(p[1]) is int:
                    self.registration = p[1]
                return False
            if p and type(p[0]) is int:
                self.registration = p[0]
                if p[0] != 1 and p[0] != 5:
                    self._link_down("registration lost", True)
            return True
        if line.startswith(b"+CIPSEND:"):  # SIMCom's report after a send's OK: nothing to do
            return True
        for urc in _DATA_URCS:
            if line.startswith(urc):
                self.rx_pending = True
                self._rx.set()
                return True
        for urc in _CLOSED_URCS:
            if line.startswith(urc):
                self._link_down("socket closed", False)
                return True
        for urc in _PDP_URCS:
            if line.startswith(urc):
                self._link_down("PDP context deactivated", True)
                return True
        for urc in _BOOT_URCS:
            if line.startswith(urc):
                self._link_down("modem restarted", True)
                return True
        return False

    def _link_down(self, why, pdp):
        if self.connected:
            self.last_error = why
        self.connected = False
        if pdp:
            self._pdp_lost = True
        self._rx.set()
        self._urc.set()

    def _store(self, data):
        self.overruns += len(data) - self._ring.put(data)
        self._rx.set()

    # -- commands -------------------------------------------------------------------------------

    async def _exchange(self, data, timeout_ms, prompt=False):
        """Write `data` and wait for a final result (or the "> " prompt): (kind, code).  Lock held."""
        self._lines = []
        self._final = (TIMEOUT, None)
        self._done.clear()
        self._want_prompt = prompt
        self._pending = True
        try:
            self._writer.write(data)
            await self._writer.drain()
            await asyncio.wait_for_ms(self._done.wait(), timeout_ms)
        except asyncio.TimeoutError:
            await self._late_final()
        except OSError as e:  # the UART itself failed: to the caller it is a command without answer
            self.last_error = "uart: %r" % (e,)
        finally:
            self._pending = False
            self._want_prompt = False
        return self._final

    async def _late_final(self):
        """After a command's timeout, wait LATE_MS more for its final, still as that command's.  Its reply
        may already be in the UART's buffer with the reader task not yet run (a busy moment, a jump of
        the ticks); taken by nobody, it would finish the next command instead."""
        try:
            await asyncio.wait_for_ms(self._done.wait(), LATE_MS)
        except asyncio.TimeoutError:
            self.timeouts += 1

    async def command(self, cmd, timeout_ms=T_SHORT, urc=None):
        """Run one AT command: (final kind, code, reply lines).  With `urc` (a line prefix), after OK
        also wait for that completion URC; its parameters are then the third item instead."""
        async with self._lock:
            self._urc_prefix = urc
            self._urc_params = None
            self._urc.clear()
            try:
                kind, code = await self._exchange(cmd + b"\r", timeout_ms)
                if kind != at.OK or urc is None:
                    return kind, code, self._lines
                if self._urc_params is None:
                    try:
                        await asyncio.wait_for_ms(self._urc.wait(), timeout_ms)
                    except asyncio.TimeoutError:
                        self.timeouts += 1
                        return TIMEOUT, None, []
                return kind, code, self._urc_params or []
            finally:
                self._urc_prefix = None

    async def _ok(self, cmd, timeout_ms=T_SHORT):
        kind, code, _ = await self.command(cmd, timeout_ms)
        if kind != at.OK:
            self._fail(cmd, kind, code)
            return False
        return True

    def _fail(self, what, kind, code):
        if kind == TIMEOUT:
            self.last_error = "%s: no answer" % what.decode()
        elif kind == at.CME_ERROR:
            self.last_error = "%s: +CME ERROR: %d" % (what.decode(), code)
        elif kind == at.OK:  # OK, but the completion URC did not say success (or never came)
            self.last_error = "%s: not completed" % what.decode()
        else:
            self.last_error = "%s: failed (%d)" % (what.decode(), kind)

    # -- bringing the link up -------------------------------------------------------------------

    async def connect(self):
        """One attempt to open the socket to host:port; True when connected.  Never raises."""
        if self.connected:
            return True
        self.start()
        try:
            ok = await self._connect()
        except Exception as e:  # whatever the modem said, the caller only learns "not connected"
            self.last_error = "connect: %r" % (e,)
            ok = False
        self.connected = ok
        if ok:
            self._ring.clear()  # bytes of an earlier socket are not this one's
            self.failures = 0
            self.last_error = ""
            return True
        self.failures += 1
        if self.failures >= MAX_FAILURES:
            self.failures = 0
            await self.power_cycle()
        return False

    async def _connect(self):
        if not await self._alive():
            return False
        await self.command(b"ATE0")
        await self._read_signal()
        if not await self._registered():
            return False
        if self._pdp_lost:
            await self._pdp_down()
            self._pdp_lost = False
        return await self._link_up()

    async def _pdp_down(self):
        """The dialect's release of a PDP context that was lost, before it is brought up again."""
        raise NotImplementedError

    async def _link_up(self):
        """The dialect's PDP context and socket open; True when the socket is open."""
        raise NotImplementedError

    async def _alive(self):
        for _ in range(3):
            kind, _, _ = await self.command(b"AT", AT_PROBE_MS)
            if kind == at.OK:
                return True
        self.last_error = "modem does not answer AT"
        return False

    async def _read_signal(self):
        kind, _, lines = await self.command(b"AT+CSQ")
        if kind == at.OK:
            for line in lines:
                p = at.params(line, b"+CSQ:")
                if p and type(p[0]) is int:
                    self.signal = None if p[0] == 99 else p[0]

    async def _registered(self):
        for query in (b"AT+CEREG?", b"AT+CREG?"):
            kind, code, _ = await self.command(query)
            if kind != at.OK:
                self._fail(query, kind, code)
            elif self.registration == 1 or self.registration == 5:
                return True
            else:
                self.last_error = "not registered (stat %r)" % (self.registration,)
        return False

    async def _open(self, template, urc):
        """Open the socket; both dialects answer OK, then `urc` <link>,<err> with err 0 on success."""
        cmd = template % (self.host.encode(), self.port)
        kind, code, p = await self.command(cmd, T_OPEN, urc)
        if kind != at.OK or not p or len(p) < 2 or p[1] != 0:
            self._fail(cmd[: cmd.find(b"=")], kind, code)
            return False
        return True

    async def power_cycle(self):
        """Restart the modem: PWRKEY off and on again if the board has the pin, else AT+CFUN=1,1."""
        self.power_cycles += 1
        self._link_down("power cycle", True)
        if self.pwrkey is not None:
            # A hung modem is assumed to be on: a long press switches it off, a short one on again.
            for pulse in self.PWRKEY_MS:
                self.pwrkey.on()
                await asyncio.sleep_ms(pulse)
                self.pwrkey.off()
                await asyncio.sleep_ms(PWRKEY_GAP_MS)
        else:
            await self.command(b"AT+CFUN=1,1", T_CLOSE)
        self._at.reset()
        self._ring.clear()
        self.rx_pending = False
        deadline = time.ticks_add(time.ticks_ms(), BOOT_MS)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            kind, _, _ = await self.command(b"AT", AT_PROBE_MS)
            if kind == at.OK:
                return True
            await asyncio.sleep_ms(AT_PROBE_MS)
        return False

    # -- the transport interface ----------------------------------------------------------------

    async def write(self, data):
        """Hand all of `data` to the modem; False (and not connected) when the link failed."""
        try:
            return await self._write(data)
        except Exception as e:  # never into the uplink: a failed write is a link that went down
            self._link_down("write: %r" % (e,), False)
            return False

    async def _write(self, data):
        mv = memoryview(data)
        sent = 0
        while sent < len(mv):
            if not self.connected:
                return False
            n = min(SEND_CHUNK, len(mv) - sent)
            if not await self._send(mv[sent : sent + n]):
                return False
            sent += n
        return True

    async def _send(self, piece):
        cmd = self.SEND % len(piece)
        kind, code = TIMEOUT, None
        for _ in range(3):
            async with self._lock:
                kind, code = await self._exchange(cmd, T_SEND, True)
                prompted = kind == at.PROMPT
                if prompted:
                    kind, code = await self._exchange(piece, T_SEND)
                if kind == TIMEOUT:
                    await self._abandon(len(piece), prompted)
            if kind == at.OK or kind == at.SEND_OK:
                return True
            if kind != at.SEND_FAIL or not self.connected:
                break
            await asyncio.sleep_ms(200)  # Quectel: the send buffer is full, try again shortly
        self._fail(cmd[:-1], kind, code)
        self._link_down(self.last_error, False)
        return False

    async def _abandon(self, n, prompted):
        """Bring the modem back to command mode after a send of `n` bytes that timed out (before or after
        its prompt): fill the payload it may be waiting for, wait for its final result (taken by nobody)
        and for the UART to go quiet.  Lock held."""
        self._done.clear()
        self._want_prompt = False
        self._pending = True  # a final now is the abandoned send's, not a later command's
        try:
            if not prompted:
                filler = memoryview(self._filler)
                while n > 0:
                    k = min(n, _FILLER)
                    self._writer.write(filler[:k])
                    await self._writer.drain()
                    n -= k
            await asyncio.wait_for_ms(self._done.wait(), T_SEND)
        except asyncio.TimeoutError:
            pass  # a modem gone deaf: the reconnect finds out
        except OSError as e:
            self.last_error = "uart: %r" % (e,)
        finally:
            self._pending = False
        deadline = time.ticks_add(time.ticks_ms(), T_SEND)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            quiet = time.ticks_diff(time.ticks_ms(), self._heard)
            if quiet >= QUIET_MS:
                return
            await asyncio.sleep_ms(QUIET_MS - quiet)

    async def read_into(self, buf, timeout_ms=1000):
        """Wait up to timeout_ms for socket data; the number of bytes put into buf (0: none, or the
        link is down: check `connected`)."""
        try:
            return await self._read_into(buf, timeout_ms)
        except Exception as e:  # never into the uplink
            self._link_down("read: %r" % (e,), False)
            return 0

    async def _read_into(self, buf, timeout_ms):
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            if len(self._ring):
                return self._ring.readinto(buf)
            if not self.connected:
                return 0
            now = time.ticks_ms()
            if self.rx_pending or time.ticks_diff(now, self._poll_at) >= 0:
                self._poll_at = time.ticks_add(now, POLL_MS)
                await self._pull()
                if len(self._ring):
                    continue
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return 0
            self._rx.clear()
            try:
                await asyncio.wait_for_ms(self._rx.wait(), min(left, POLL_MS))
            except asyncio.TimeoutError:
                pass

    async def _pull(self):
        room = self._ring.room()
        if room <= 0:
            return
        room = min(room, 1460)
        cmd = self.READ % room
        self._reading = True
        try:
            kind, code, lines = await self.command(cmd, T_SHORT)
        finally:
            self._reading = False
        if kind != at.OK:
            if any(line.startswith(b"+IP ERROR: No data") for line in lines):  # SIMCom: none buffered
                self.rx_pending = False
            elif kind == at.ERROR or kind == at.CME_ERROR or kind == TIMEOUT:
                self._fail(cmd, kind, code)  # no such socket any more, or a modem gone deaf
                self._link_down(self.last_error, False)
            return
        more = False
        for line in lines:
            p = at.params(line, self.READ_REPLY)
            if not p:
                continue
            said = self._more_waiting(p, room)
            if said is not None:
                more = said
        self.rx_pending = more

    def _more_waiting(self, p, room):
        """From the parameters `p` of a read reply line asking for `room` bytes: True when the modem
        holds more, False when not, None when the line does not say."""
        raise NotImplementedError

    async def close(self):
        """Close the socket (the PDP context stays up for the next connect)."""
        if not self.connected:
            return
        self.connected = False
        try:
            await self._close_socket()
        except Exception as e:  # connect() closes a stale socket anyway
            self.last_error = "close: %r" % (e,)

    async def _close_socket(self):
        """The dialect's close of link 0, waiting for its completion."""
        raise NotImplementedError
