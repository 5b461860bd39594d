"""The byte pipe under the link protocol: a direct serial line or a cellular modem, one interface.

The uplink talks to a transport object and never learns which one it has:

    await t.connect() -> bool      bring the link up (one attempt, never raises); True when usable.
                                   Serial: always True.  Modem: registration, PDP context, TCP socket;
                                   after repeated failures the modem is power-cycled inside connect().
    await t.write(data) -> bool    hand all bytes to the link; False when the link failed (then
                                   `connected` is False: call connect() again after a backoff).  True
                                   only means the bytes left the terminal (for a modem: "SEND OK", the
                                   modem took them); only the collector's ACK means they arrived.
    await t.read_into(buf, timeout_ms=1000) -> n
                                   wait up to timeout_ms for received bytes; n > 0 bytes were put at
                                   the start of buf; 0: nothing in time, or the link went down.
    await t.close()                drop the link (the uplink's own choice, e.g. nothing to send).
    t.connected                    bool: the last connect() worked and nothing has failed since.
    t.signal                       modem: +CSQ rssi 0..31 (dBm = -113 + 2 * rssi) or None; serial: None.
    t.registration                 modem: +CEREG/+CREG stat (1 home, 5 roaming) or None; serial: None.
    t.last_error                   "" or a short reason for the last failure, for heartbeats and logs.

Bytes are an unframed stream on both: a modem socket may split or merge writes, so framing (and
resynchronisation after loss) is the link protocol's job, exactly as on a serial line.

open_transport(board, cfg) picks one from a config dict: {"link": "serial"} (the default) or
{"link": "modem", "dialect": "simcom"|"quectel", "host": ..., "port": ..., "apn": ...}.
"""

import asyncio

BAUD = 115200


class SerialTransport:
    """A UART straight to the host (the bus's onboard unit or a depot PC): always connected."""

    def __init__(self, uart):
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self.connected = True
        self.signal = None
        self.registration = None
        self.last_error = ""

    async def connect(self):
        return True

    async def write(self, data):
        self._writer.write(data)
        await self._writer.drain()
        return True

    async def read_into(self, buf, timeout_ms=1000):
        try:
            n = await asyncio.wait_for_ms(self._reader.readinto(buf), timeout_ms)
        except asyncio.TimeoutError:
            return 0
        return n or 0

    async def close(self):
        pass


def open_transport(board, cfg):
    """The transport `cfg` asks for, on the board's "uplink" UART.

    The cellular one is the modem driver itself, the Modem class of the configured dialect.
    """
    uart = board.uart("uplink", BAUD)
    if cfg.get("link", "serial") != "modem":
        return SerialTransport(uart)
    driver = modem_class(cfg.get("dialect", "quectel"))
    pwrkey = board.modem_pwrkey() if hasattr(board, "modem_pwrkey") else None
    return driver(uart, cfg["host"], cfg["port"], cfg.get("apn", ""), pwrkey)


def modem_class(dialect):
    """The modem driver of `dialect`: one of protocol/uplink_config.py DIALECTS, which `provision --uplink`
    checks against (the firmware does not import that module: its heap is tight).

    Only that dialect's module and the shared driver are imported, and only when a modem is
    configured: the code costs about 25 KB of heap when loaded from .mpy.
    """
    if dialect == "simcom":
        from firmware.drivers import modem_simcom as driver
    elif dialect == "quectel":
        from firmware.drivers import modem_quectel as driver
    else:
        raise ValueError("unknown modem dialect %r" % (dialect,))
    return driver.Modem
