"""`python -m host_sim bench drain --json`: how close the terminal's uplink drains a full journal to line rate.

A virtual board (the unchanged firmware on MicroPython, uplink pty paced by host_sim.emulators.serial_pty.Wire
at the 115200 baud the firmware sets) buffers --records EMV-QR records, then uploads them to the
collector (its real Session and SQLite store, host_sim.backend.collector.serve_serial) over that pty.

Filling: presenting 10 000 codes at the scanner's 9600 baud would take about half an hour, so the
journal is filled over the console instead.  host_sim/device/journal_fill.py, run with mpremote while
the firmware is stopped at the REPL, builds each record exactly as a QR tap does (fleet token under
the terminal's token key, EXT_TOKEN_KEY, ATC and AID extensions, firmware/app.py's field values) and appends it with
firmware.journal.Journal on board.journal_partition() under the terminal's journal key
(crypto.derive(salt, b"journal mac"), as firmware/app.py derives it).  The board is provisioned
first (device key on the board, registered with the collector).

Timing: the clock starts at the soft reset that boots the firmware with the full journal, so the
boot, journal recovery and handshake count too, and stops when a second database connection sees
every record committed.

    line_rate_bound_s  record bytes / (baud / 10): the time the records alone need on the line
    ratio              seconds / line_rate_bound_s
    first_record_s     reset to the first committed record (boot and handshake)
    wire_bytes         bytes the terminal sent on the uplink (frames, handshake, retransmissions)
    wire_ratio         seconds / (wire_bytes / (baud / 10)): 1.0 would mean the line never idled.
                       host_sim.emulators.serial_pty.Pacer itself delivers about 1.10x the line-rate time (its
                       sleeps overshoot and a late piece is not made up), so ~1.1 is a busy line.
"""

import os
import sqlite3
import subprocess
import tempfile
import threading
import time

from host_sim.backend import serial_server
from host_sim.backend.store import Store
from host_sim.tools import provision, vboard
from host_sim.tools.flash import board_call, mpremote_exe

BAUD = 115200  # firmware/app.py UPLINK_BAUD: the rate the board sets on its uplink UART
JOURNAL_KB = 1024  # 10 000 EMV-QR entries (65 bytes each) need ~160 sectors; the default partition has 126
HEAP = vboard.DEFAULT_HEAP  # the unix port keeps all bytecode in the heap; see host_sim/tools/vboard.py


def fill(port, count, timeout=300):
    """Append `count` records on the board at `port`; returns (depth, last seq, record bytes)."""
    proc = subprocess.run([mpremote_exe(), "connect", port] + board_call("journal_fill", "fill", count),
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("filled="):
            depth, last, size, _ = (int(v) for v in line.split("=", 1)[1].split(","))
            return depth, last, size
    raise RuntimeError("filling the journal failed (%d): %s%s" % (proc.returncode, proc.stdout[-800:],
                                                                  proc.stderr[-800:]))


def _count(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0) "
                           "FROM records").fetchone()
    finally:
        con.close()


def drain(workdir, records=10000, timeout=600.0, heap=HEAP):
    flash = os.path.join(workdir, "flash.img")
    db = os.path.join(workdir, "collector.db")
    board = vboard.VirtualBoard(flash, heap=heap, journal_kb=JOURNAL_KB).start()
    store = None
    stop = threading.Event()
    wire = bytearray()
    server = None
    try:
        board.wait_console(b"ready:", timeout=30)
        terminal = provision.provision(board.ports["console"], db, reset=False)
        depth, last, record_bytes = fill(board.ports["console"], records)
        store = Store(db)
        result = {}
        server = threading.Thread(target=lambda: result.update(session=serial_server.serve_serial(
            board.ports["uplink"], store, stop, wire)), daemon=True)
        server.start()
        time.sleep(0.2)  # the collector's port is open before the terminal boots
        mark = board.console_mark()
        t0 = time.monotonic()
        provision.soft_reset(board.ports["console"])
        first = None
        stored = (0, 0, 0, 0)
        while time.monotonic() - t0 < timeout:
            stored = _count(db)
            if stored[0] and first is None:
                first = time.monotonic() - t0
            if stored[0] >= records:
                break
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        board.wait_console(b"ready:", timeout=5, since=mark)
        stop.set()
        server.join(timeout=5)
        session = result.get("session")
    finally:
        stop.set()
        board.stop()
        if store is not None:
            store.close()
    bound = record_bytes / (BAUD / 10)
    return {
        "records": stored[0],
        "baud": BAUD,
        "seconds": round(seconds, 2),
        "line_rate_bound_s": round(bound, 2),
        "ratio": round(seconds / bound, 3) if bound else 0,
        "first_record_s": round(first, 2) if first is not None else None,
        "record_bytes": record_bytes,
        "wire_bytes": len(wire),
        "wire_ratio": round(seconds / (len(wire) / (BAUD / 10)), 3) if wire else 0,
        "journal_depth": depth,
        "distinct": stored[1],
        "first_seq": stored[2],
        "last_seq": stored[3],
        "expected_last_seq": last,
        "duplicate_receipts": session.duplicate_receipts if session is not None else None,
        "terminal": terminal,
        "heap": heap,
    }


def run(args):
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        return drain(args.workdir, args.records, heap=args.heap)
    with tempfile.TemporaryDirectory(prefix="zhifu-bench-drain-") as workdir:
        return drain(workdir, args.records, heap=args.heap)


def add_arguments(parser):
    parser.add_argument("--records", type=int, default=10000, help="records buffered in the journal, then drained")
    parser.add_argument("--heap", default=HEAP, help="the board's MicroPython heap (the vboard default is %s)"
                        % vboard.DEFAULT_HEAP)
    parser.add_argument("--workdir", help="keep the flash image and collector database here")
