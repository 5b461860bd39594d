"""The technician console on the console UART: a line reader beside the terminal's tasks.

One asyncio task reads the console a byte at a time as bytes arrive, so taps, NFC and uploads keep
running while a technician is connected, types slowly or pulls the cable.  Whole lines go to the shell
(firmware/console_shell.py: login, commands), loaded with the first line so that a terminal nobody
services keeps that heap.  Lines that are too long, hold bytes other than printable ASCII, or were cut
off (no end of line for LINE_IDLE_MS) are refused with a reason and never reach the shell.
"""

import asyncio
import sys
import time

MAX_LINE = 1100  # a login line with its certificate is about 760 bytes
LINE_IDLE_MS = 10000  # a partial line this old when the next byte comes was cut off (cable pulled): dropped


class ServiceMode(BaseException):
    """Raised out of the event loop by `service`: the terminal stops and the board is left at its REPL."""


class Console:
    def __init__(self, terminal, write=None):
        self.t = terminal
        self.write = write or _write
        self.shell = None  # firmware.console_shell.Shell, from the first line on
        self.started = time.ticks_ms()

    async def run(self, stream):
        reader = asyncio.StreamReader(stream)
        buf = bytearray()
        bad = None  # why the line being received is refused
        last = time.ticks_ms()
        while True:
            try:
                b = await reader.read(1)
            except OSError:  # the console itself failed (a USB bridge unplugged): try again later
                await asyncio.sleep_ms(500)
                continue
            if not b:
                await asyncio.sleep_ms(100)
                continue
            now = time.ticks_ms()
            if (buf or bad) and time.ticks_diff(now, last) > LINE_IDLE_MS:
                self.write("@err partial line dropped (no end of line for %d s)" % (LINE_IDLE_MS // 1000))
                buf = bytearray()
                bad = None
            last = now
            c = b[0]
            if c == 10 or c == 13:
                if bad:
                    self.write("@err " + bad)
                elif buf:
                    await self._line(buf.decode())
                buf = bytearray()
                bad = None
            elif bad:
                continue
            elif len(buf) >= MAX_LINE:
                bad = "line too long (at most %d bytes)" % MAX_LINE
            elif c < 0x20 or c > 0x7E:
                bad = "binary input refused (printable ASCII lines only)"
            else:
                buf.append(c)

    async def _line(self, line):
        try:
            if self.shell is None:
                from firmware.console_shell import Shell

                self.shell = Shell(self.t, self.write, self.started)
            for reply in await self.shell.handle(line):
                self.write(reply)
        except ServiceMode:
            raise
        except Exception as e:  # a bug in one command (or no heap for the shell) must not end the console
            sys.print_exception(e)
            self.write("@err internal error: %s" % type(e).__name__)


def _write(line):
    sys.stdout.write(line + "\n")


def console_stream():
    """The console UART as a byte stream (stdin: the USB REPL on a board, the console pty on a vboard)."""
    return getattr(sys.stdin, "buffer", sys.stdin)
