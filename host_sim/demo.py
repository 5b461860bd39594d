"""The end-to-end demo: two terminals, a forged payment code, a power cut, the issuer's answer.

Two virtual terminals (A and B) are provisioned against one collector (SQLite) that authorises every
stored transaction with the issuer simulation (host_sim/backend/issuer.py checks each application
cryptogram with the card's keys).  Passengers' phones (host_sim/emulators/wallet.py) show EMVCo CPM
payment codes with real cryptograms; one passenger's code is forged: it passes every check a terminal
can make offline, so terminal A accepts it, and the issuer declines it once A has uploaded it.  The
decline becomes a fleet-wide deny-list entry (the token is the same on every terminal), which terminal
B receives at its next exchange with the collector; the forged card's next code is refused at B.

On A, midway, the power is cut (kill -9) right after a code was presented and the board restarts on
the same flash image; a code that got no answer is presented again, as a passenger would.  At the end
every tap a terminal signalled as accepted must be in the collector exactly once.  The last line
printed is a JSON summary.
"""

import json
import os
import random
import re
import tempfile
import threading
import time

from host_sim.backend import acquirer, serial_server
from host_sim.backend.backoffice import Backoffice
from host_sim.backend.store import ACCEPTED_TAP, Store
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.emulators.wallet import ACCOUNTS, Wallet
from host_sim.tools import provision, vboard
from host_sim.tools.events import EventLog
from protocol import bundle, luhn, record

OUTCOMES = ("PAID", "ALREADY PAID", "DECLINED", "SEE DRIVER")
TERMINALS = (("A", "5642000001"), ("B", "5642000002"))
PROFILES = ("unionpay-hce", "unionpay-card", "visa", "mastercard")
MAX_RETAPS = 5  # a passenger gives up after that; the demo fails with the terminal's console
FORGED_PAN_BODY = "622848000000777"  # an account of the unionpay-card test issuer; its phone is forged


def outcome(events, since, timeout=5):
    """The next tap outcome on the display after event index `since`: (index, event) or (since, None)."""
    try:
        return events.wait_display(since, timeout, prefixes=OUTCOMES)
    except TimeoutError:
        return since, None


def _with_check_digit(body):
    return next(body + d for d in "0123456789" if luhn.valid(body + d))


def passengers(count, first=0):
    """`count` genuine phones, one per test account (accounts `first`...), across the issuer profiles."""
    phones = []
    for i in range(first, first + count):
        profile = PROFILES[i % len(PROFILES)]
        pan = ACCOUNTS[profile][0]
        phones.append(Wallet(profile, pan=_with_check_digit(pan[:-4] + "%03d" % (100 + i))))
    return phones


def make_taps(count=20):
    """`count` payment codes (each phone shows a fresh code per payment), a forged one, one garbage line."""
    phones = passengers(max(1, count // 3))
    taps = [("code", phones[i % len(phones)].show()) for i in range(count)]
    forged = Wallet("unionpay-card", pan=_with_check_digit(FORGED_PAN_BODY))
    taps.insert(count // 4, ("forged", forged.show(forge=True)))
    taps.insert(count // 3, ("garbage", "hello? this is not a payment code"))
    return taps, forged


def seq_of(ev):
    m = re.search(r"#(\d+)", ev.get("detail", ""))
    return int(m.group(1)) if m else None


class Terminal:
    """One virtual board with its scanner, its output events and its uplink served by the collector."""

    def __init__(self, name, uid, workdir, store, office, stop, clock=None, heap=vboard.DEFAULT_HEAP):
        self.name = name
        self.board = vboard.VirtualBoard(os.path.join(workdir, "flash-%s.img" % name), uid=uid, clock=clock,
                                         heap=heap).start()
        self.uplink = threading.Thread(target=serial_server.serve_serial,
                                       args=(self.board.ports["uplink"], store, stop, None, office), daemon=True)
        self.uplink.start()
        self.events = EventLog(self.board.ports["events"])
        self.scanner = ScannerEmulator(self.board.ports["scanner"])
        self.terminal = None
        self.accepted = set()

    def provision(self, db):
        mark = self.board.console_mark()
        self.terminal = provision.provision(self.board.ports["console"], db)
        self.board.wait_console(b"ready:", timeout=20, since=mark)

    def tap(self, payload):
        """Present a code and wait for the display's answer: the event, or None after a few seconds."""
        seen = len(self.events.items)
        self.scanner.present(payload)
        return outcome(self.events, seen)[1]

    def close(self):
        self.events.close()
        self.scanner.close()
        self.board.stop()


def _wait(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError("the demo waited %d s for %s" % (timeout, what))


def _run_terminal_a(a, taps, cut_at, say):
    """A's passengers, the forged code among them, a power cut while a code is being decided."""
    declined = retaps = cuts = 0
    forged_seq = None
    for i, (what, payload) in enumerate(taps):
        seen = len(a.events.items)
        a.scanner.present(payload)
        if i == cut_at:
            # The code has just gone over the 9600-baud wire and the terminal is deciding: pull the plug.
            time.sleep((len(payload) + 2) * 10 / 9600 + random.uniform(-0.02, 0.01))
            mark = a.board.console_mark()
            a.board.power_cut()
            cuts += 1
            say("A tap %2d: power cut while the terminal was deciding" % (i + 1))
            a.board.power_on()
            a.board.wait_console(b"ready:", timeout=20, since=mark)
        seen, ev = outcome(a.events, seen)
        while ev is None or (i == cut_at and what != "garbage" and ev["text"].startswith(("DECLINED", "SEE DRIVER"))):
            # No answer, or half a code read as the power came back: the passenger shows it again.
            retaps += 1
            if retaps > MAX_RETAPS:
                raise RuntimeError("terminal A gave no answer to tap %d; its console:\n%s"
                                   % (i + 1, a.board.console_text()[-1500:]))
            say("A tap %2d: %s, presenting the code again" % (i + 1, "no answer" if ev is None else "misread"))
            seen = len(a.events.items) if ev is None else seen + 1
            a.scanner.present(payload)
            seen, ev = outcome(a.events, seen)
        if ev["text"].startswith(("DECLINED", "SEE DRIVER")):
            declined += 1
        else:
            a.accepted.add(seq_of(ev))
            if what == "forged":
                forged_seq = seq_of(ev)
        say("A tap %2d: %-8s -> %s %s" % (i + 1, what, ev["text"], ev.get("detail", "")))
    return declined, retaps, cuts, forged_seq


def run_demo(workdir, count=20, cut_at=None, say=print):
    db = os.path.join(workdir, "collector.db")
    for name in os.listdir(workdir):
        if name.startswith(("flash-", "collector.db")):
            path = os.path.join(workdir, name)
            if os.path.isfile(path):
                os.remove(path)
    store = Store(db)
    office = Backoffice(store, acquirer.Acquirer())  # the issuer simulation checks every cryptogram
    stop = threading.Event()
    worker = threading.Thread(target=office.run_authorisations, args=(stop, 0.2), daemon=True)
    worker.start()
    taps, forged = make_taps(count)
    cut_at = len(taps) // 2 if cut_at is None else cut_at
    terminals = []
    refused_elsewhere = b_declined = 0
    try:
        for name, uid in TERMINALS:
            terminals.append(Terminal(name, uid, workdir, store, office, stop))
        a, b = terminals
        for t in terminals:
            t.board.wait_console(b"ready:", timeout=20)
            t.provision(db)
            say("terminal %s (%s) provisioned: device key, fleet token key, the collector's seal key"
                % (t.name, t.terminal))
        declined, retaps, cuts, forged_seq = _run_terminal_a(a, taps, cut_at, say)

        def stored_seqs(terminal):
            return {row[0] for row in store.query("SELECT seq FROM records r WHERE r.terminal = ? AND " + ACCEPTED_TAP,
                                                  (terminal,))}

        _wait("A's accepted taps at the collector", lambda: a.accepted <= stored_seqs(a.terminal))
        verdict = _wait("the issuer's answer for the forged code", lambda: store.query(
            "SELECT approved, reason FROM authorisations WHERE terminal = ? AND seq = ?", (a.terminal, forged_seq)))
        say("the issuer %s A's #%d (the forged code): %s" % ("approved" if verdict[0][0] else "declined",
                                                             forged_seq, verdict[0][1]))
        # B's passengers: the first one's upload brings B the deny-list delta; then the forged phone again.
        deny_version = store.deny_list_version()
        for phone in passengers(2, first=500):
            ev = b.tap(phone.show())
            if ev is not None and ev["text"].startswith("PAID"):
                b.accepted.add(seq_of(ev))
            say("B tap: code     -> %s %s" % (ev and ev["text"], ev and ev.get("detail", "")))
        _wait("B's deny list at version %d" % deny_version,
              lambda: store.delivered_version(b.terminal, bundle.KIND_DENY) >= deny_version)
        ev = b.tap(forged.show(forge=True))
        say("B tap: forged   -> %s %s" % (ev and ev["text"], ev and ev.get("detail", "")))
        if ev is not None and ev["text"] in ("DECLINED", "SEE DRIVER"):
            b_declined += 1
            if ev.get("detail") == record.REASON_TEXT[record.REASON_DENY_LISTED]:
                refused_elsewhere += 1
        elif ev is not None and ev["text"].startswith("PAID"):
            b.accepted.add(seq_of(ev))
        _wait("B's accepted taps at the collector", lambda: b.accepted <= stored_seqs(b.terminal))
        _wait("every transaction decided", lambda: not store.pending_records(), timeout=20)
        rows = store.query("SELECT terminal, seq, token, atc FROM records r WHERE " + ACCEPTED_TAP)
        issuer_declined = store.query("SELECT COUNT(*) FROM authorisations WHERE approved = 0")[0][0]
        declined_records = store.query("SELECT COUNT(*) FROM records WHERE decision = ?", (record.DECLINED,))[0][0]
        runtime = store.query("SELECT runtime FROM terminals")
    finally:
        stop.set()
        worker.join(timeout=5)
        for t in terminals:
            t.uplink.join(timeout=2)
            t.close()
        store.close()
    accepted = {(t.terminal, seq) for t in terminals for seq in t.accepted}
    stored = {(r[0], r[1]) for r in rows}
    distinct_taps = {(r[2], r[3]) for r in rows}
    return {
        "taps": len(taps) + 3,
        "accepted": len(accepted),
        "declined": declined + b_declined,
        "uploaded": len(rows),
        "lost": len(accepted - stored),
        "duplicates": len(rows) - len(distinct_taps),
        "runtime": runtime[0][0] if runtime else "",
        "power_cuts": cuts,
        "retaps": retaps,
        "declined_records": declined_records,
        "issuer_declined": issuer_declined,
        "refused_elsewhere": refused_elsewhere,
        "terminals": len(terminals),
    }


def main(args):
    start = time.monotonic()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        summary = run_demo(args.workdir, count=args.taps)
    else:
        with tempfile.TemporaryDirectory(prefix="zhifu-demo-") as workdir:
            summary = run_demo(workdir, count=args.taps)
    print("%d taps on %d terminals: %d accepted, %d declined; %d uploaded, %d lost, %d duplicates; %d declined "
          "taps recorded at the collector; firmware ran on %s (%.1f s)"
          % (summary["taps"], summary["terminals"], summary["accepted"], summary["declined"], summary["uploaded"],
             summary["lost"], summary["duplicates"], summary["declined_records"], summary["runtime"],
             time.monotonic() - start))
    if summary["issuer_declined"] and summary["refused_elsewhere"]:
        print("The forged payment code passed terminal A's offline checks and was accepted; once A uploaded it, "
              "the issuer found its cryptogram false and declined it; the card joined the fleet's deny list, and "
              "its next code was refused at terminal B (\"card blocked\").")
    else:
        print("The forged payment code was NOT stopped as it should be: %d issuer declines, %d refusals at B."
              % (summary["issuer_declined"], summary["refused_elsewhere"]))
    print(json.dumps(summary), flush=True)
    ok = summary["lost"] == 0 and summary["duplicates"] == 0
    return 0 if ok and summary["issuer_declined"] and summary["refused_elsewhere"] else 1


def add_arguments(parser):
    parser.add_argument("--taps", type=int, default=20, help="payment codes to present on A (plus a forged code and "
                                                             "one garbage line)")
    parser.add_argument("--workdir", help="keep the flash images and collector database here")
