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

import socket
import threading

from host_sim import micropython
from host_sim.emulators.modem import DIALECTS, ModemEmulator

BAUD = 115200

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
    with ModemEmulator(dialect, connect=("127.0.0.1", port)) as emu:
        raw = micropython.run_program("bench_modem", [dialect, port, kbytes, pings], heap="192k", board=True,
                                      env={"ZF_UART_UPLINK": emu.port}, timeout=180)
    srv.close()
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
