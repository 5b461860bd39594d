"""Run by `micropython` (not pytest): the modem transport on the virtual board's "uplink" UART, used the
way an uplink uses it, against whatever modem is on the other end of the pty.

argv: dialect (simcom, quectel, or serial for the direct line) host port rounds block_size.  Each
round writes one block (a 4-byte round number and then bytes 0x00-0xFF repeated) and reads it back
from the echo server at the far end of the socket.  A link that fails mid-round is reconnected after
a backoff with jitter and the block is sent again, whole, on the new socket.  The last line printed
is "RESULT <json>" with what happened; an exception that escapes the transport is reported as "escaped".
"""

import asyncio
import json
import os
import sys
import time

import board
from firmware import transport


def scale_times(scale):
    """Tests shorten the modules' PWRKEY pulses (seconds long), the AT probe and the send timeout by
    the emulator's time_scale, so a power cycle takes a fraction of a second."""
    from firmware.drivers import modem, modem_quectel, modem_simcom

    for dialect in (modem_simcom.Modem, modem_quectel.Modem):
        dialect.PWRKEY_MS = tuple(int(ms * scale) for ms in dialect.PWRKEY_MS)
    modem.PWRKEY_GAP_MS = int(modem.PWRKEY_GAP_MS * scale)
    modem.AT_PROBE_MS = max(50, int(modem.AT_PROBE_MS * scale))
    modem.T_SEND = max(500, int(modem.T_SEND * scale))


async def session(dialect, host, port, rounds, size):
    if dialect == "serial":
        t = transport.open_transport(board, {"link": "serial"})
    else:
        t = transport.open_transport(board, {"link": "modem", "dialect": dialect, "host": host, "port": port})
    got = bytearray(size)
    chunk = bytearray(256)
    done = 0
    attempts = 0
    connect_failures = 0
    errors = []
    backoff = 50
    started = time.ticks_ms()
    while done < rounds:
        if time.ticks_diff(time.ticks_ms(), started) > 90000:
            break
        if not t.connected:
            if not await t.connect():
                connect_failures += 1
                if t.last_error and t.last_error not in errors and len(errors) < 12:
                    errors.append(t.last_error)
                await asyncio.sleep_ms(backoff + os.urandom(1)[0] * backoff // 256)
                backoff = min(backoff * 2, 800)
                continue
            backoff = 50
        block = bytes([done >> 24 & 255, done >> 16 & 255, done >> 8 & 255, done & 255])
        block += bytes(i & 255 for i in range(size - 4))
        attempts += 1
        if not await t.write(block):
            if t.last_error not in errors and len(errors) < 12:
                errors.append(t.last_error)
            continue
        n = 0
        deadline = time.ticks_add(time.ticks_ms(), 8000)
        while n < size and t.connected and time.ticks_diff(deadline, time.ticks_ms()) > 0:
            k = await t.read_into(chunk, 1000)
            take = min(k, size - n)
            got[n : n + take] = chunk[:take]
            n += take
        if n == size:
            if bytes(got) != block:
                return {"corrupt": done}
            done += 1
        elif t.connected:  # no echo in time on a live socket: start over on a new one
            await t.close()
        if not t.connected and t.last_error not in errors and len(errors) < 12:
            errors.append(t.last_error)
    return {"rounds": done, "attempts": attempts, "connect_failures": connect_failures,
            "power_cycles": getattr(t, "power_cycles", 0), "timeouts": getattr(t, "timeouts", 0),
            "cme_errors": getattr(t, "cme_errors", 0), "signal": t.signal, "registration": t.registration,
            "errors": errors, "overruns": getattr(t, "overruns", 0), "stray": getattr(t, "stray", 0)}


def main():
    dialect, host, port, rounds, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    scale = os.getenv("MODEM_TIME_SCALE")
    if scale:
        scale_times(float(scale))
    try:
        result = asyncio.run(session(dialect, host, port, rounds, size))
    except Exception as e:  # the transport promised never to raise: report it
        sys.print_exception(e)
        result = {"escaped": repr(e)}
    print("RESULT " + json.dumps(result))


main()
