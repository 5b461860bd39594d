"""PN532 NFC controller: HSU (UART) or I2C transport, command/ACK/response cycle, ISO 14443-4 APDUs.

The driver core (Pn532) only needs a transport with `write(data)`, `async read(timeout_ms, expect)`
(a memoryview of received bytes, or None when nothing came in time) and `flush()`, so the same code
runs over a UART, over I2C and, in tests, over a scripted transport on CPython and MicroPython.

A command is: send the frame, wait for the ACK (UM0701-02 §6.2.1.3), wait for the response frame.
No ACK, a NACK or a garbled ACK -> the command is sent again (up to `retries`).  A response that
fails its checksum is asked for again with a NACK (§6.2.1.4).  A response timeout is ended with an
ACK from the host, which the manual defines as "abort the current command" (§6.2.1.3), so the chip
is ready for the next one.  Every failure is a Pn532Error (or its subclasses below): the caller turns
it into a rejection reason.
"""

import asyncio
import time

from micropython import const

from protocol import pn532

ACK_TIMEOUT_MS = const(30)  # the chip answers a command with ACK within a few ms (HSU at 115200)
RESPONSE_TIMEOUT_MS = const(500)
POLL_TIMEOUT_MS = const(300)
EXCHANGE_TIMEOUT_MS = const(1000)
RETRIES = const(2)
TG = const(1)
I2C_ADDRESS = const(0x24)
_CHAIN = const(262)  # data bytes per InDataExchange (§7.3.8: 262 bytes of DataOut)


class Pn532Timeout(pn532.Pn532Error):
    pass


class TargetGone(pn532.Pn532Error):
    """The card or phone left the field (or stopped answering) during an exchange."""


class HsuTransport:
    """The PN532's High Speed UART: 115200 8N1; a 55 55 00... preamble wakes it from power-down."""

    def __init__(self, uart):
        self._uart = uart
        self._chunk = bytearray(64)
        self._mv = memoryview(self._chunk)

    def wake(self):
        self._uart.write(pn532.WAKEUP)

    def write(self, data):
        self._uart.write(data)

    def flush(self):
        while self._uart.readinto(self._chunk):
            pass

    async def read(self, timeout_ms, expect=0):
        start = time.ticks_ms()
        while True:
            n = self._uart.readinto(self._chunk)
            if n:
                return self._mv[:n]
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return None
            await asyncio.sleep_ms(1)


class I2cTransport:
    """I2C at address 0x24: every read starts with a status byte, 0x01 when a frame is ready (§6.2.4)."""

    def __init__(self, i2c, address=I2C_ADDRESS):
        self._i2c = i2c
        self._address = address
        self._status = bytearray(1)
        self._rx = bytearray(pn532.MAX_INFO + 11)
        self._mv = memoryview(self._rx)

    def wake(self):
        try:  # an I2C start condition addressed to the chip wakes it; it may NAK this first time
            self._i2c.writeto(self._address, b"\x00")
        except OSError:
            pass

    def write(self, data):
        try:
            self._i2c.writeto(self._address, data)
        except OSError as e:
            raise pn532.Pn532Error("I2C write failed: %s" % e)

    def flush(self):
        pass  # an I2C slave keeps nothing queued once its frame was read

    async def read(self, timeout_ms, expect=0):
        start = time.ticks_ms()
        while True:
            try:
                self._i2c.readfrom_into(self._address, self._status)
                if self._status[0] & 1:
                    n = 1 + (expect or len(self._rx) - 1)
                    self._i2c.readfrom_into(self._address, self._mv[:n])
                    return self._mv[1:n]
            except OSError:
                pass  # busy (clock stretching gave up) counts as not ready
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return None
            await asyncio.sleep_ms(2)


class Pn532:
    def __init__(self, transport, retries=RETRIES):
        self.t = transport
        self.retries = retries
        self.reader = pn532.FrameReader()
        self._pending = []
        self.apdus = 0  # counters for benchmarks and diagnostics
        self.bytes = 0
        self.target = None

    async def _event(self, timeout_ms, expect=0):
        if self._pending:
            return self._pending.pop(0)
        start = time.ticks_ms()
        while True:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0:
                return None
            chunk = await self.t.read(left, expect)
            if chunk is None:
                return None
            events = self.reader.feed(chunk)
            if events:
                self._pending = events[1:]
                return events[0]

    async def call(self, frame, code, timeout_ms=RESPONSE_TIMEOUT_MS):
        """Send one command frame; the response data (after D5 code+1).  Raises Pn532Error."""
        last = "no ACK"
        for _ in range(self.retries + 1):
            self.t.flush()
            self.reader.reset()
            self._pending = []
            self.t.write(frame)
            ev = await self._event(ACK_TIMEOUT_MS, 6)
            if ev is None or ev[0] == pn532.EV_NACK:
                last = "no ACK"
                self.t.wake()
                continue
            if ev[0] == pn532.EV_ERROR:
                raise pn532.Pn532Error("PN532 refused command 0x%02X (syntax error frame)" % code)
            if ev[0] == pn532.EV_FRAME:  # a stale response where the ACK belonged: send again
                last = "unexpected frame instead of ACK"
                continue
            payload = await self._response(code, timeout_ms)
            if payload is None:
                self.t.write(pn532.ACK)  # abort the command so the chip takes the next one
                raise Pn532Timeout("no response to command 0x%02X" % code)
            return pn532.response_data(payload, code)
        raise Pn532Timeout("command 0x%02X: %s after %d tries" % (code, last, self.retries + 1))

    async def _response(self, code, timeout_ms):
        """The payload of the response to `code`.  A late answer to an earlier (aborted) command, or its
        stray ACK, is skipped; a garbled response is asked for once more with a NACK."""
        start = time.ticks_ms()
        nacked = False
        while True:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            errors = self.reader.errors
            ev = await self._event(max(left, 0))
            if ev is None:
                if self.reader.errors == errors or nacked:
                    return None
                nacked = True
                self.t.write(pn532.NACK)  # the response was garbled: ask for it once more
                start = time.ticks_ms()
                timeout_ms = ACK_TIMEOUT_MS + 20
                continue
            if ev[0] == pn532.EV_ERROR:
                raise pn532.Pn532Error("PN532 refused command 0x%02X (syntax error frame)" % code)
            payload = ev[1]
            if ev[0] == pn532.EV_FRAME and len(payload) >= 2 and payload[1] == (code + 1) & 0xFF:
                return payload

    async def begin(self):
        """Wake the chip, check it is a PN532, leave SAM mode, and make target polling finite."""
        self.t.wake()
        data = await self.call(pn532.get_firmware_version(), pn532.CMD_GET_FIRMWARE_VERSION)
        version = pn532.parse_firmware_version(b"\xd5\x03" + data)
        if version[0] != 0x32:
            raise pn532.Pn532Error("not a PN532 (IC 0x%02X)" % version[0])
        await self.call(pn532.sam_configuration(), pn532.CMD_SAM_CONFIGURATION)
        # RFConfiguration item 5, MaxRetries: ATR 0xFF, PSL 1, passive activation 2 tries (not forever),
        # so InListPassiveTarget returns "no target" instead of blocking (§7.3.1).
        await self.call(pn532.command(pn532.CMD_RF_CONFIGURATION, b"\x05\xff\x01\x02"), pn532.CMD_RF_CONFIGURATION)
        return version

    async def poll(self):
        """One InListPassiveTarget at 106 kbps type A: (tg, sens_res, sel_res, nfcid, ats) or None."""
        data = await self.call(pn532.in_list_passive_target(), pn532.CMD_IN_LIST_PASSIVE_TARGET, POLL_TIMEOUT_MS)
        targets = pn532.parse_in_list_passive_target(b"\xd5\x4b" + data)
        self.target = targets[0] if targets else None
        return self.target

    async def exchange(self, apdu, timeout_ms=EXCHANGE_TIMEOUT_MS):
        """Send a command APDU to the listed target; the whole response APDU (MI chaining joined)."""
        self.apdus += 1
        mv = memoryview(apdu)
        i = 0
        while True:  # outgoing chaining: every piece but the last carries MI
            piece = mv[i : i + _CHAIN]
            i += len(piece)
            status, data = await self._exchange_once(pn532.in_data_exchange(TG, piece, i < len(mv)), timeout_ms)
            self.bytes += len(piece)
            if i >= len(mv):
                break
        out = data
        while status & pn532.STATUS_MI:  # the answer continues: fetch the rest
            status, data = await self._exchange_once(pn532.in_data_exchange(TG, b""), timeout_ms)
            out += data
            if len(out) > 4096:
                raise pn532.Pn532Error("response longer than 4096 bytes")
        self.bytes += len(out)
        return out

    async def _exchange_once(self, frame, timeout_ms):
        try:
            data = await self.call(frame, pn532.CMD_IN_DATA_EXCHANGE, timeout_ms)
        except Pn532Timeout:
            raise TargetGone("no answer from the target")
        status, payload = pn532.parse_in_data_exchange(b"\xd5\x41" + data)
        code = status & pn532.STATUS_ERROR_MASK
        if code in (pn532.ERR_TIMEOUT, pn532.ERR_RELEASED, pn532.ERR_DISAPPEARED):
            raise TargetGone(pn532.status_text(status))
        if code:
            raise pn532.Pn532Error("InDataExchange: " + pn532.status_text(status))
        return status, payload

    async def release(self):
        """InRelease of every target; errors here are harmless (the card may be gone already)."""
        self.target = None
        try:
            await self.call(pn532.in_release(0), pn532.CMD_IN_RELEASE)
        except pn532.Pn532Error:
            pass


def for_board(board, baudrate=115200):
    """The PN532 as this board wires it (HSU UART or I2C), or None when the board has no NFC reader."""
    if "nfc" in getattr(board, "UART_NAMES", ()):
        return Pn532(HsuTransport(board.uart("nfc", baudrate)))
    if "nfc" in getattr(board, "I2C_NAMES", ()):
        return Pn532(I2cTransport(board.i2c("nfc")))
    return None
