"""`python -m host_sim bench modem --json`: the cellular transport's throughput and latency through the
modem emulator, per dialect, at the line rate the firmware sets (115200 baud, paced on the pty).

The firmware side is the real driver on the MicroPython unix port with the virtual board; the far end
is a TCP echo server on loopback.  Measured on the device:
    connect_ms        AT handshake, registration, PDP activation and socket open
    upload_bytes_per_s  payload bytes per second handed to the modem (all "SEND OK"), `--kbytes` KB in
                      1 KB writes, nothing coming back: the uplink's case (records up, small ACKs)
    upload_efficiency upload_bytes_per_s / line_bytes_per_s
    echo_bytes_per_s  payload bytes per second sent up and echoed back down at the same time (the
                      UART is full duplex), over `--kbytes` KB in 1 KB writes
    line_bytes_per_s  baud / 10: what the UART can carry at all (8N1)
    efficiency        echo_bytes_per_s / line_bytes_per_s.  At most about 0.5 in pull receive mode: AT
                      is one command at a time, so each AT+QIRD / AT+CIPRXGET waits for the sends
    rtt_ms_p50/p90    round trip of a 32-byte message: send + the collector's answer + the read
"""

import json
import os
import socket
import subprocess
import tempfile
import threading

from host_sim.emulators.modem import DIALECTS, ModemEmulator
from host_sim.tools.build import ROOT
from host_sim.tools.vboard import micropython_command

BAUD = 115200

# Runs inside MicroPython (passed with -c, so host_sim itself never imports firmware code).
_DEVICE = r"""
import asyncio, json, sys, time
import board
from firmware import transport

async def run(dialect, port, kbytes, pings):
    t = transport.open_transport(board, {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port})
    t0 = time.ticks_ms()
    while not await t.connect():
        await asyncio.sleep_ms(100)
    connect_ms = time.ticks_diff(time.ticks_ms(), t0)
    block = bytes(i & 255 for i in range(1024))
    t0 = time.ticks_ms()
    for _ in range(kbytes):
        await t.write(block)
    upload_s = time.ticks_diff(time.ticks_ms(), t0) / 1000
    await t.close()
    while not await t.connect():
        await asyncio.sleep_ms(100)
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

print(json.dumps(asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))))
"""


def _echo_server():
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _echo(conn):
    with conn:
        while True:
            try:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
            except OSError:
                return


def measure(dialect, kbytes=16, pings=20):
    srv = _echo_server()
    port = srv.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp, ModemEmulator(dialect, connect=("127.0.0.1", port)) as emu:
        os.symlink(os.path.join(ROOT, "hardware", "boards", "virtual.py"), os.path.join(tmp, "board.py"))
        env = dict(os.environ, ZF_UART_UPLINK=emu.port, MICROPYPATH="%s:%s:.frozen" % (tmp, ROOT))
        proc = subprocess.run(
            [micropython_command(), "-X", "heapsize=192k", "-c", _DEVICE, dialect, str(port), str(kbytes), str(pings)],
            env=env, capture_output=True, text=True, timeout=180)
    srv.close()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError("device side failed:\n" + proc.stdout + proc.stderr)
    raw = json.loads(lines[-1])
    rtts = raw["rtts"]
    rate = raw["bytes"] / raw["seconds"] if raw["seconds"] else 0.0
    return {
        "connect_ms": raw["connect_ms"],
        "upload_bytes_per_s": round(kbytes * 1024 / raw["upload_s"]),
        "upload_efficiency": round(kbytes * 1024 / raw["upload_s"] / (BAUD / 10), 3),
        "bytes": raw["bytes"],
        "seconds": round(raw["seconds"], 3),
        "echo_bytes_per_s": round(rate),
        "line_bytes_per_s": BAUD // 10,
        "efficiency": round(rate / (BAUD / 10), 3),
        "rtt_ms_p50": rtts[len(rtts) // 2],
        "rtt_ms_p90": rtts[min(len(rtts) - 1, len(rtts) * 9 // 10)],
    }


def add_arguments(parser):
    parser.add_argument("--kbytes", type=int, default=16, help="payload KB for the throughput run")
    parser.add_argument("--pings", type=int, default=20, help="round trips for the latency run")
    parser.add_argument("--dialect", choices=DIALECTS, action="append", help="only this dialect (repeatable)")


def run(args):
    result = {"baud": BAUD}
    for dialect in args.dialect or DIALECTS:
        result[dialect] = measure(dialect, args.kbytes, args.pings)
    return result
