"""The end-to-end demo: a virtual terminal takes ~20 payment codes, survives a power cut, uploads.

The board is provisioned first (device key on the board and in the collector's database), then a
collector (SQLite) serves the board's uplink pty; a scanner emulator presents EMVCo CPM codes made
with test card numbers, plus one garbage line.  Midway the board's power is cut (kill -9) right after
a code was presented, and the board is restarted on the same flash image; a code that got no answer
is presented again, as a passenger would.  At the end every tap the terminal signalled as accepted
must be in the collector exactly once.  The last line printed is a JSON summary.
"""

import json
import os
import random
import re
import tempfile
import threading
import time

from host_sim.backend import serial_server
from host_sim.backend.store import ACCEPTED_TAP, Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import provision, vboard
from host_sim.tools.events import EventLog
from protocol import cpm, record

# Test card numbers (Luhn-valid, in UnionPay's 62 range, issued to no one).
TEST_CARDS = ("6212345678901234569", "6214830012345673", "6228480000000000018", "6217000010000000003",
              "6222020200112233446", "6230580000000000005", "6259650000000000009")
OUTCOMES = ("PAID", "ALREADY PAID", "DECLINED")


def outcome(events, since, timeout=5):
    """The next tap outcome on the display after event index `since`: (index, event) or (since, None)."""
    try:
        return events.wait_display(since, timeout, prefixes=OUTCOMES)
    except TimeoutError:
        return since, None


def make_taps(count=20):
    """`count` payment codes (each tap its own transaction counter) and one garbage line."""
    taps = []
    for i in range(count):
        pan = TEST_CARDS[i % len(TEST_CARDS)]
        taps.append(("code", cpm.encode(pan, atc=100 + i, cryptogram=os.urandom(8), unpredictable=os.urandom(4))))
    taps.insert(count // 3, ("garbage", "hello? this is not a payment code"))
    return taps


def seq_of(ev):
    m = re.search(r"#(\d+)", ev.get("detail", ""))
    return int(m.group(1)) if m else None


def run_demo(workdir, count=20, cut_at=None, say=print):
    flash = os.path.join(workdir, "flash.img")
    db = os.path.join(workdir, "collector.db")
    for path in (flash, db):
        if os.path.exists(path):
            os.remove(path)
    store = Store(db)
    board = vboard.VirtualBoard(flash).start()
    stop = threading.Event()
    uplink = threading.Thread(target=serial_server.serve_serial, args=(board.ports["uplink"], store, stop), daemon=True)
    uplink.start()
    events = EventLog(board.ports["events"])
    scanner = ScannerEmulator(board.ports["scanner"])
    taps = make_taps(count)
    cut_at = len(taps) // 2 if cut_at is None else cut_at
    accepted, declined, retaps, cuts = set(), 0, 0, 0
    try:
        board.wait_console(b"ready:", timeout=20)
        say("virtual board up: %s" % json.dumps(board.ports))
        mark = board.console_mark()
        say("provisioned terminal %s (device key on the board and in the collector)"
            % provision.provision(board.ports["console"], db))
        board.wait_console(b"ready:", timeout=20, since=mark)
        for i, (what, payload) in enumerate(taps):
            seen = len(events.items)
            scanner.present(payload)
            if i == cut_at:
                # The code has just gone over the 9600-baud wire and the terminal is deciding: pull the plug.
                time.sleep((len(payload) + 2) * 10 / 9600 + random.uniform(-0.02, 0.01))
                mark = board.console_mark()
                board.power_cut()
                cuts += 1
                say("tap %2d: power cut while the terminal was deciding" % (i + 1))
                board.power_on()
                board.wait_console(b"ready:", timeout=20, since=mark)
            seen, ev = outcome(events, seen)
            while ev is None or (i == cut_at and what == "code" and ev["text"].startswith("DECLINED")):
                # No answer, or half a code read as the power came back: the passenger shows it again.
                retaps += 1
                say("tap %2d: %s, presenting the code again" % (i + 1, "no answer" if ev is None else "misread"))
                seen = len(events.items) if ev is None else seen + 1
                scanner.present(payload)
                seen, ev = outcome(events, seen)
            if ev["text"].startswith("DECLINED"):
                declined += 1
            else:
                accepted.add(seq_of(ev))
            say("tap %2d: %-8s -> %s %s" % (i + 1, what, ev["text"], ev.get("detail", "")))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = {row[0] for row in store.query("SELECT seq FROM records r WHERE " + ACCEPTED_TAP)}
            if accepted <= stored:
                break
            time.sleep(0.2)
        rows = store.query("SELECT seq, token, atc FROM records r WHERE " + ACCEPTED_TAP)  # declined taps: no
        declined_records = store.query("SELECT COUNT(*) FROM records WHERE decision = ?", (record.DECLINED,))[0][0]
        runtime = store.query("SELECT runtime FROM terminals")
    finally:
        stop.set()
        uplink.join(timeout=2)
        events.close()
        scanner.close()
        board.stop()
        store.close()
    stored = {r[0] for r in rows}
    distinct_taps = {(r[1], r[2]) for r in rows}
    summary = {
        "taps": len(taps),
        "accepted": len(accepted),
        "declined": declined,
        "uploaded": len(rows),
        "lost": len(accepted - stored),
        "duplicates": len(rows) - len(distinct_taps),
        "runtime": runtime[0][0] if runtime else "",
        "power_cuts": cuts,
        "retaps": retaps,
        "declined_records": declined_records,
    }
    return summary


def main(args):
    start = time.monotonic()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        summary = run_demo(args.workdir, count=args.taps)
    else:
        with tempfile.TemporaryDirectory(prefix="zhifu-demo-") as workdir:
            summary = run_demo(workdir, count=args.taps)
    print("%d taps: %d accepted, %d declined; %d uploaded, %d lost, %d duplicates; %d declined taps recorded at "
          "the collector; firmware ran on %s (%.1f s)"
          % (summary["taps"], summary["accepted"], summary["declined"], summary["uploaded"], summary["lost"],
             summary["duplicates"], summary["declined_records"], summary["runtime"], time.monotonic() - start))
    print(json.dumps(summary), flush=True)
    return 0 if summary["lost"] == 0 and summary["duplicates"] == 0 else 1


def add_arguments(parser):
    parser.add_argument("--taps", type=int, default=20, help="payment codes to present (plus one garbage line)")
    parser.add_argument("--workdir", help="keep the flash image and collector database here")
