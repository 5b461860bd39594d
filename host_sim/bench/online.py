"""`python -m host_sim bench online --json`: tap-to-decision time of a numeric payment code authorised
online, on a virtual board through the collector, over the serial uplink and over the modem emulator.

Each tap: the scanner emulator presents a fresh test UnionPay code (host_sim/paycodes.py) and the clock
stops at the display that follows PROCESSING (PAID).  The time includes the scanner line at 9600 baud,
the ONLINE_REQUEST over the link, the collector's 0200 to its in-process acquirer host and the way back.
`terminal_median_ms` is what the terminal itself measured from sending the request to its answer, and
`modem.link_down_decline` the same taps before the collector runs ("network needed" without asking
anyone): the part of the time that is the scanner line, the decision and the display, not the network.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from host_sim import paycodes
from host_sim.backend import acquirer, backoffice, host_session
from host_sim.backend.store import Store
from host_sim.emulators.modem import ModemEmulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import build, provision, vboard
from host_sim.tools.events import EventLog
from protocol import paycode


def _pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError("bench online: no %s within %d s" % (what, timeout))


def _events(board):
    """The board's events, read every 5 ms: EventLog's 100 ms read timeout would quantise every time."""
    events = EventLog(board.ports["events"])
    events.ser.timeout = 0.005
    return events


def _declines(board, taps):
    """The same taps with the link down: "network needed" at once, the reference without the network."""
    events = _events(board)
    scanner = ScannerEmulator(board.ports["scanner"])
    times = []
    try:
        for _ in range(taps):
            seen = len(events.items)
            t0 = time.monotonic()
            scanner.present(paycodes.make(paycode.UNIONPAY))
            _, ev = events.wait_display(seen, timeout=10)
            if ev.get("detail") != "network needed":
                raise RuntimeError("bench online: link down, yet %s %s" % (ev["text"], ev.get("detail")))
            times.append((time.monotonic() - t0) * 1000)
            time.sleep(0.2)
    finally:
        events.close()
        scanner.close()
    return {"taps": len(times), "median_ms": round(statistics.median(times), 1), "p99_ms": round(_pct(times, 99), 1)}


def _taps(board, db, terminal, taps):
    store = Store(db)
    events = _events(board)
    scanner = ScannerEmulator(board.ports["scanner"])
    try:
        _wait(lambda: store.latest_status(terminal), 40, "STATUS from the terminal (session up)")
        times = []
        for _ in range(taps):
            seen = len(events.items)
            t0 = time.monotonic()
            scanner.present(paycodes.make(paycode.UNIONPAY))
            i, ev = events.wait_display(seen, timeout=10)
            if ev["text"] == "PROCESSING":
                i, ev = events.wait_display(i + 1, timeout=10)
            if not ev["text"].startswith("PAID"):
                raise RuntimeError("bench online: a tap ended %s %s" % (ev["text"], ev.get("detail")))
            times.append((time.monotonic() - t0) * 1000)
            time.sleep(0.2)
        said = [int(m) for m in re.findall(r"answered in (\d+) ms", board.console_text())]
    finally:
        events.close()
        scanner.close()
        store.close()
    return {"taps": len(times), "median_ms": round(statistics.median(times), 1), "p99_ms": round(_pct(times, 99), 1),
            "terminal_median_ms": statistics.median(said) if said else None}


def serial(taps, workdir):
    db = os.path.join(workdir, "serial.db")
    board = vboard.VirtualBoard(os.path.join(workdir, "serial.img")).start()
    stop = threading.Event()
    try:
        board.wait_console(b"ready:", timeout=20)
        mark = board.console_mark()
        terminal = provision.provision(board.ports["console"], db)
        board.wait_console(b"ready:", timeout=20, since=mark)
        store = Store(db)
        office = backoffice.Backoffice(store, acquirer.Acquirer())

        def serve():
            import serial as pyserial

            ser = pyserial.serial_for_url(board.ports["uplink"], baudrate=115200, timeout=0.01)
            s = host_session.Session(store, backoffice=office)
            while not stop.is_set():
                reply = s.receive(ser.read(512))
                if reply:
                    ser.write(reply)
            ser.close()

        threading.Thread(target=serve, daemon=True).start()
        return _taps(board, db, terminal, taps)
    finally:
        stop.set()
        board.stop()


def modem(taps, workdir, dialect="quectel"):
    db = os.path.join(workdir, "modem.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu = ModemEmulator(dialect, connect=("127.0.0.1", port)).start()
    board = vboard.VirtualBoard(os.path.join(workdir, "modem.img"), heap=vboard.DEFAULT_HEAP,
                                attach={"uplink": emu.port}).start()
    proc = None
    try:
        board.wait_console(b"ready:", timeout=20)
        cfg = {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port, "apn": "cmnet"}
        local = os.path.join(workdir, "uplink.json")
        with open(local, "w") as f:
            json.dump(cfg, f)
        exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
        subprocess.run([exe, "connect", board.ports["console"], "fs", "mkdir", ":/flash/config"], capture_output=True,
                       timeout=30)  # there already on a provisioned image: that failure is fine
        subprocess.run([exe, "connect", board.ports["console"], "fs", "cp", local, ":/flash/config/uplink.json"],
                       check=True, capture_output=True, timeout=30)
        mark = board.console_mark()
        terminal = provision.provision(board.ports["console"], db)
        board.wait_console(b"ready:", timeout=20, since=mark)
        reference = _declines(board, taps)
        proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                                 "127.0.0.1:%d" % port], cwd=build.ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        result = _taps(board, db, terminal, taps)
        result["dialect"] = dialect
        result["link_down_decline"] = reference
        return result
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        board.stop()
        emu.close()


def run(args):
    with tempfile.TemporaryDirectory() as workdir:
        return {"serial": serial(args.taps, workdir), "modem": modem(args.taps, workdir, args.dialect),
                "deadline_ms": 2000}


def add_arguments(parser):
    parser.add_argument("--taps", type=int, default=20, help="payment codes per link")
    parser.add_argument("--dialect", default="quectel", choices=("quectel", "simcom"))
