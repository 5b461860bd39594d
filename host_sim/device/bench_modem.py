"""`bench modem` inside MicroPython: the firmware's modem transport on the virtual board's uplink
UART against a TCP echo server: connect time, upload, full-duplex echo, round trips.

argv: dialect, echo server port, kbytes, pings."""

import asyncio
import sys
import time

import board
from firmware import transport
from host_sim.device import results


async def connected(t):
    while not await t.connect():
        await asyncio.sleep_ms(100)


async def run(dialect, port, kbytes, pings):
    t = transport.open_transport(board, {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port})
    t0 = time.ticks_ms()
    await connected(t)
    connect_ms = time.ticks_diff(time.ticks_ms(), t0)
    block = bytes(i & 255 for i in range(1024))
    t0 = time.ticks_ms()
    for _ in range(kbytes):
        await t.write(block)
    upload_s = time.ticks_diff(time.ticks_ms(), t0) / 1000
    await t.close()
    await connected(t)
    buf = bytearray(512)
    total = kbytes * 1024
    got = 0

    async def reader():
        nonlocal got
        while got < total:
            got += await t.read_into(buf, 1000)

    t0 = time.ticks_ms()
    task = asyncio.create_task(reader())
    for _ in range(kbytes):
        await t.write(block)
    while got < total and time.ticks_diff(time.ticks_ms(), t0) < 60000:
        await asyncio.sleep_ms(5)
    seconds = time.ticks_diff(time.ticks_ms(), t0) / 1000
    task.cancel()
    rtts = []
    msg = b"p" * 32
    for _ in range(pings):
        t1 = time.ticks_ms()
        await t.write(msg)
        n = 0
        while n < 32:
            n += await t.read_into(buf, 1000)
        rtts.append(time.ticks_diff(time.ticks_ms(), t1))
    rtts.sort()
    return {"connect_ms": connect_ms, "upload_s": upload_s, "bytes": got, "seconds": seconds, "rtts": rtts}


results.report(asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
