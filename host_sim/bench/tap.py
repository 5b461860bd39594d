"""`python -m host_sim bench tap --json`: the tap budget, through the real firmware on a virtual board.

One board, provisioned with ticket keys and the test ride-code roots, takes taps in turn: a CPM payment
code (decided offline), a signed ticket, an SM2 ride code and a contactless read of a UnionPay HCE phone
on the PN532 emulator.  Each is timed from the credential reaching the terminal to the first feedback
event (buzzer, LED, relay or display) on the events pty; the firmware gives feedback for an accepted tap
only after its journal record is durable, so the time covers line -> decision -> journal commit ->
feedback.  A tap that does not end with its expected display (PAID / WELCOME) is not timed: it is listed in
"failures", and the exceptions the firmware printed meanwhile in "console_errors".

Clock ("clock": "host"): the events carry the board's ticks_ms, but nothing marks when the firmware got the
line, so the time is host-side, from the line's one write to the scanner pty (QR) or from the emulated
PN532 reporting the phone in its InListPassiveTarget answer (contactless) to the host reading the first
feedback line, each read stamped when it arrives (no read timeout quantises it).  With pacing ("paced":
true) the scanner wire runs at the baud the firmware negotiated with the module ("scanner_baud"), so the
line's time on the wire (`line_ms`) is inside the figure; --no-pace gives the unpaced wire.  The decision
and commit cannot be told apart from the events, so no split is given; `feedback_span_ms` is the board's
own time (ticks_ms) from the first feedback event to the display.

"rsa_verify_us" is one RSA-2048 verify inside MicroPython, measured in the same run before the board
starts (the reference the tap figures are read against).  --deny-entries N fills the terminal's deny list
with N entries before it boots (host_sim/device/deny_fill.py); "ready" is its ready line's heap figures.
"""

import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import serial
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim import micropython
from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import provision, ridecodes, tickets, vboard
from protocol import cpm, pn532, ridecode

CPM_PAN = "6228480000000000018"
PHONE = "unionpay-hce"
TICKET_ISSUER = 9
KINDS = ("qr_cpm", "ticket", "ride_code", "contactless")  # one of each per round, in the issue's order
EXPECTED = {"qr_cpm": "PAID", "ticket": "WELCOME", "ride_code": "PAID", "contactless": "PAID"}


def _pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class _Events:
    """The board's event lines, each with the host's monotonic time of the read that brought it."""

    def __init__(self, port):
        self.ser = serial.serial_for_url(port, timeout=0)
        self.items = []  # (host time, event)
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        buf = b""
        fd = self.ser.fileno()
        while not self._stop:
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                data = os.read(fd, 4096) if ready else b""
            except OSError:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            *lines, buf = (buf + data).split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                with self._cond:
                    self.items.append((now, ev))
                    self._cond.notify_all()

    def settle(self, quiet=0.5, timeout=10):
        """Wait until no event has come for `quiet` seconds."""
        end = time.monotonic() + timeout
        count = -1
        while count != len(self.items) and time.monotonic() < end:
            count = len(self.items)
            time.sleep(quiet)

    def wait_display(self, start, timeout=20):
        """(index, host time, event) of the first display change at or after `start` other than READY."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.items)):
                    at, ev = self.items[i]
                    if ev.get("out") == "display" and ev.get("text") != "READY":
                        return i, at, ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("bench tap: no display; events so far: %r"
                                       % [e for _, e in self.items[-8:]])
                self._cond.wait(left)

    def close(self):
        self._stop = True
        self._thread.join(timeout=1)
        self.ser.close()


class _TimedPn532(Pn532Emulator):
    """The PN532 emulator, noting when it reported a card in the field (the start of a contactless read)."""

    found_at = None

    def _cmd_4a(self, data):
        result = super()._cmd_4a(data)
        if result != b"\x00":
            self.found_at = time.monotonic()
        return result


def rsa_verify(iterations, heap="192k"):
    """Median and p99 microseconds of protocol/rsa.verify inside MicroPython."""
    key = tickets.generate_key()
    msg = b"bench tap: one RSA-2048 verify for reference"
    sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs")
        with open(path, "w") as f:
            f.write("\n".join(x.hex() for x in (modulus, msg, sig)) + "\n")
        return micropython.run_program("bench_rsa_verify", [path, iterations], heap=heap)


def _ready_line(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("ready:")]
    if not lines:
        return None
    m = re.search(r"heap (\d+) used (\d+) free", lines[-1])
    return {"line": lines[-1].strip(), "heap_used": int(m.group(1)), "heap_free": int(m.group(2))} if m else None


def _scanner_baud(text):
    found = re.findall(r"scanner: (\d+) baud", text)
    return int(found[-1]) if found else None


def _since(board, mark):
    """The console output after `mark` (console_mark()), as much of it as the board's tail keeps."""
    text = board.console_text()
    return text[max(0, len(text) - (board.console_mark() - mark)):]


def _errors(text, out):
    """Add to `out` each distinct exception the firmware printed, with the line it was raised at."""
    last_at = None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("File "):
            last_at = ln
        elif re.match(r"[A-Za-z]+Error: ", ln):
            seen = ln + (" (" + last_at + ")" if last_at else "")
            if seen not in out:
                out.append(seen)


def _prepare(board, workdir):
    """Ticket keys and ride roots onto the board, then provisioning (which restarts it); the ticket key."""
    key = tickets.generate_key()
    ring = os.path.join(workdir, "tickets")
    with open(ring, "w") as f:
        f.write(tickets.keyring_line(key, TICKET_ISSUER, 1) + "\n")
    roots = os.path.join(workdir, "ride-roots")
    with open(roots, "w") as f:
        f.write(ridecodes.root_lines())
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    subprocess.run([exe, "connect", board.ports["console"], "fs", "cp", ring, ":/flash/keys/tickets"],
                   check=True, capture_output=True, timeout=60)
    mark = board.console_mark()
    provision.provision(board.ports["console"], os.path.join(workdir, "c.db"), ride_roots=roots)
    board.wait_console(b"ready:", timeout=60, since=mark)
    return key, mark


def _wait_removed(emu, timeout=10):
    """The phone gone and the terminal polled the empty field since: the next presentation is a new tap."""
    end = time.monotonic() + timeout
    while emu.card is not None:
        if time.monotonic() > end:
            raise TimeoutError("bench tap: the phone never left the field")
        time.sleep(0.01)
    polls = len(emu.commands)
    while pn532.CMD_IN_LIST_PASSIVE_TARGET not in emu.commands[polls:]:
        if time.monotonic() > end:
            raise TimeoutError("bench tap: the terminal never polled the empty field")
        time.sleep(0.01)


def _taps(board, scanner, nfc, key, taps, gap):
    events = _Events(board.ports["events"])
    events.settle()  # the boot's events, waiting in the pty, read before the first tap
    times = {k: [] for k in KINDS}
    spans = {k: [] for k in KINDS}
    line_bytes = {}
    failures = []  # taps that did not end with their expected display: not timed, reported
    errors = []  # what the firmware printed of exceptions meanwhile
    counter = 0
    try:
        for r in range(taps):
            for kind in KINDS:
                mark = board.console_mark()
                counter += 1
                now = int(time.time())
                if kind == "qr_cpm":
                    text = cpm.encode(CPM_PAN, atc=counter, cryptogram=os.urandom(8))
                elif kind == "ticket":
                    text = tickets.issue(key, TICKET_ISSUER, 1, os.urandom(8), valid_from=now - 60,
                                         valid_to=now + 3600, entries=1)
                elif kind == "ride_code":
                    text = ridecodes.issue(ridecode.ALG_SM2, now, user_id=b"RIDER001", counter=counter)
                else:
                    text = None
                seen = len(events.items)
                if text is not None:
                    t0 = time.monotonic()  # one write: its last byte leaves with its first
                    scanner.present(text)
                    line_bytes[kind] = len(text) + 2
                else:
                    nfc.found_at = None
                    nfc.present(PHONE, dwell_s=0.3)
                _, _, ev = events.wait_display(seen)
                if text is None:
                    t0 = nfc.found_at
                if not ev["text"].startswith(EXPECTED[kind]):
                    time.sleep(0.2)  # the traceback is printed after the display
                    _errors(_since(board, mark), errors)
                    failures.append({"kind": kind, "round": r + 1, "text": ev["text"], "detail": ev.get("detail")})
                    if text is None:
                        _wait_removed(nfc)
                    time.sleep(gap)
                    continue
                first_at, first = events.items[seen]
                times[kind].append((first_at - t0) * 1000)
                spans[kind].append(ev["t"] - first["t"])
                if text is None:
                    _wait_removed(nfc)
                time.sleep(gap)
    finally:
        events.close()
    out = {"failures": failures, "console_errors": errors}
    for kind in KINDS:
        t = times[kind]
        out[kind] = {"median_ms": round(statistics.median(t), 1) if t else None,
                     "p99_ms": round(_pct(t, 99), 1) if t else None, "n": len(t),
                     "feedback_span_ms": statistics.median(spans[kind]) if t else None}
        if kind in line_bytes:
            out[kind]["line_bytes"] = line_bytes[kind]
    return out


def measure(taps, pace=True, deny_entries=0, gap=0.5, workdir=None, rsa_iterations=100):
    """The bench's result (see the module docstring); `workdir` keeps the flash image (a temporary one if None)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = workdir or tmp
        rsa = rsa_verify(rsa_iterations)
        image = os.path.join(workdir, "flash.img")
        fill = None
        if deny_entries:
            t = time.monotonic()
            filled = micropython.run_program("deny_fill", [deny_entries], heap="192k", board=True,
                                             env={"ZF_FLASH": image}, timeout=1800)
            fill = {"entries": filled["count"], "flash_bytes": filled["flash_bytes"],
                    "fill_s": round(time.monotonic() - t, 1)}
        board = vboard.VirtualBoard(image, pace=pace).start()
        scanner = nfc = None
        try:
            # Both peripherals answer from power-on, so the firmware negotiates with them at boot.
            scanner = ScannerEmulator(board.ports["scanner"])
            nfc = _TimedPn532(board.ports["nfc"])
            board.wait_console(b"ready:", timeout=120)
            key, mark = _prepare(board, workdir)
            booted = _since(board, mark)
            result = _taps(board, scanner, nfc, key, taps, gap)
        finally:
            for emu in (scanner, nfc):
                if emu is not None:
                    emu.close()
            board.stop()
    baud = _scanner_baud(booted)
    for kind in [k for k in KINDS if "line_bytes" in result[k]]:  # the QR kinds
        result[kind]["line_ms"] = round(result[kind]["line_bytes"] * 10 * 1000 / baud, 1) if pace and baud else 0.0
    result["rsa_verify_us"] = rsa["median_us"]
    result["rsa_verify"] = {k: rsa[k] for k in ("median_us", "p99_us", "min_us", "n", "runtime")}
    result["paced"] = pace
    result["scanner_baud"] = baud
    result["clock"] = "host"
    result["from"] = {"qr": "line written to the scanner pty", "contactless": "PN532 reports the card",
                      "to": "first feedback event read on the events pty"}
    result["deny_entries"] = deny_entries
    result["deny_fill"] = fill
    result["ready"] = _ready_line(booted)
    cards = re.findall(r"deny list: version \d+, (\d+) cards", booted)
    result["deny_cards"] = int(cards[-1]) if cards else None  # what the terminal says it holds
    return result


def run(args):
    # Board wires, emulators and the event reader are threads of this process: a short GIL switch
    # interval keeps a thread's time stamp from waiting behind another's 5 ms slice.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        return _run(args)
    finally:
        sys.setswitchinterval(interval)


def _run(args):
    if args.taps < 1 or args.deny_entries < 0 or args.gap < 0:
        raise SystemExit("bench tap: --taps must be at least 1, --deny-entries and --gap not negative")
    return measure(args.taps, pace=not args.no_pace, deny_entries=args.deny_entries, gap=args.gap)


def add_arguments(parser):
    parser.add_argument("--taps", type=int, default=30, help="taps of each kind")
    parser.add_argument("--no-pace", action="store_true", help="do not pace the scanner and NFC wires at their baud")
    parser.add_argument("--deny-entries", type=int, default=0, help="deny-list entries filled before boot")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between one tap's display and the next tap")
