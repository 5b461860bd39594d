"""What several virtual-board tests share: mpremote as a technician runs it, the event reader, the heap
budget a ready terminal keeps, and a provisioned board whose uplink a collector serves."""

import os
import re
import socket
import subprocess
import sys
import threading
import time

from host_sim.backend import acquirer, backoffice, host_session
from host_sim.tools import build, provision
from host_sim.tools.events import EventLog
from protocol import cpm
from tests.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# At ready: all code a terminal with QR, tickets, NFC/EMV and the link protocol loads, plus its data.
# A change that pushes this over the budget must free memory elsewhere or justify a new budget.
# 170 KB + 14 KB measured at ready after the CPM checks of EMV QRCPS (+3.4 KB), sealing card data to the
# collector (+4.4 KB on a provisioned terminal: protocol/seal and firmware/sealing, the collector's modulus,
# the next epoch key wrapped at boot; RSA-OAEP is loaded only for a wrap and dropped after), fleet tokens
# (+2.3 KB) and the contactless kernel's checks; most of it is bytecode, which a device keeps in flash.
# +32 KB, of which 14.5 KB is the unix port's seventh qstr pool, allocated at once when the interned names of the
# loaded modules pass about 1 260 (measured: +14.9 KB for 40 new names, +1.4 KB for the next 40; a device build
# freezes the names with the bytecode into flash, so it is not device RAM).  The rest is code loaded at boot:
# per-record verdicts, the sequence floor and the quarantine (+2.5 KB), the county-scale deny list's lookup
# module, the ONLINE_REQUEST/RESULT codec and the uplink's online path, the ride-code and payment-code branches
# of the decision and their record reasons.  protocol/paycode.py, firmware/ridecodes.py with protocol/ecc.py,
# and firmware/denylist_merge.py load on first use, not at boot.
# +8 KB: the durable per-credential state (firmware/tapstate.py), loaded at boot to catch up with the journal
# (measured with the profile plumbing and bus product: 214.4 -> 219.2 KB at ready on the virtual board; its buffer
# is 320 bytes); its replay and the offline-risk rules (firmware/risk.py) load only when used.
# +10 KB (measured +9.8 KB on a provisioned terminal with fleet bundles): the log on /flash (firmware/eventlog.py,
# ~4.4 KB with its names; the code that writes and reads its files loads for a flush and is dropped after) and the
# console's line reader (~2.1 KB), the rest their interned names and the lines around them; a device freezes
# bytecode and names into flash.  The console's shell loads with the first console line.
# +14 KB with the three products together (profiles, bus, gate, promotions and their Chinese texts, each
# loading at boot only what a terminal without their profile section needs): 245.7 KB measured on a
# provisioned terminal with fleet bundles.  On this port most of it is bytecode (see host_sim/tools/vboard.py).
READY_USED_BUDGET = 248 * 1024


def _virtual_board_journal_offset():
    """Where hardware/boards/virtual.py puts the raw journal partition in the flash image (tests that damage
    the journal write there)."""
    with open(os.path.join(ROOT, "hardware", "boards", "virtual.py")) as f:
        kb = re.search(r"^JOURNAL_OFFSET = const\((\d+) \* 1024\)", f.read(), re.M)
    return int(kb.group(1)) * 1024


JOURNAL_OFFSET = _virtual_board_journal_offset()

Events = EventLog  # the tests read output events the way the demo does


def mpremote(port, *args, timeout=30):
    """Run mpremote against a port exactly as a technician would; returns stdout."""
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    proc = subprocess.run([exe, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "mpremote %s failed:\n%s\n%s" % (" ".join(args), proc.stdout, proc.stderr)
    return proc.stdout


def payment_code(pan, atc):
    """A CPM payment code of `pan` with a given ATC: for an account of a test issuer (host_sim/issuers.py)
    the genuine cryptogram, which the collector's issuer simulation approves; for any other account a
    zero cryptogram, which the terminal accepts offline and the acquirer declines ("no such issuer")."""
    from host_sim import issuers
    from host_sim.emulators import wallet

    profile = issuers.profile_for(pan)
    if profile is None:
        return cpm.encode(pan, atc=atc, cryptogram=bytes(8))
    return wallet.code(profile, pan=pan, atc=atc)


def provisioned(board, db, config_keys=None, group=None):
    """Provision `board` into the collector database `db`; returns its terminal id once it is ready again."""
    mark = board.console_mark()
    terminal = provision.provision(board.ports["console"], db, config_keys=config_keys, group=group)
    board.wait_console(b"ready:", timeout=20, since=mark)
    return terminal


def tap(scanner, events, payload, seen):
    """Present `payload` and wait for the display it causes after event index `seen`: (next index, event)."""
    scanner.present(payload)
    i, ev = events.wait_display(seen, timeout=10)
    return i + 1, ev


class Served:
    """A collector on the board's uplink pty, with a given acquirer and wall clock."""

    def __init__(self, board, store, rules, wallclock=time.time, bundles=None):
        self.office = backoffice.Backoffice(store, acquirer.Acquirer(rules), bundles)
        self.stop = threading.Event()
        self.wallclock = wallclock
        self.thread = threading.Thread(target=self._serve, args=(board.ports["uplink"], store), daemon=True)
        self.thread.start()
        self.authorisations = threading.Thread(target=self.office.run_authorisations, args=(self.stop, 0.2),
                                               daemon=True)
        self.authorisations.start()

    def _serve(self, port, store):
        import serial

        ser = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
        s = host_session.Session(store, backoffice=self.office, wallclock=self.wallclock)
        try:
            while not self.stop.is_set():
                reply = s.receive(ser.read(512))
                if reply:
                    ser.write(reply)
        finally:
            ser.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.authorisations.join(timeout=5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_collector(db, port, log_path, *options):
    """The collector as an operator runs it, once it listens; its log (stderr) goes to `log_path`, which the
    test reads (tests/host_sim/helpers.py's start_collector pipes it and keeps a connection open)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "host_sim", "collector", "--db", db, "--listen",
                                 "127.0.0.1:%d" % port, *options], cwd=build.ROOT, stdout=subprocess.DEVNULL,
                                stderr=log)

    def listening():
        assert proc.poll() is None, "collector exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, timeout=20, what="the collector to listen")
    return proc


def processes():
    """(pid, parent pid, state letter, command line) of every process this machine shows in /proc."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                args = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        rows.append((int(name), int(fields[1]), fields[0], args))
    return rows


# Two buses, two runs, a power cut: the small scenario the `sim run` tests share (host_sim/sim/scenario.py).
SMALL_SCENARIO = """\
[scenario]
name = "two buses"
date = "2026-12-04"
seed = 5

[[terminals]]
name = "bus"
profile = "bus"
count = 2

[timeline]
runs = ["07:00", "09:00"]

[[stops]]
name = "A"
dwell_s = 60
boardings = 2.0

[[stops]]
name = "B"
travel_s = 900
dwell_s = 60

[passengers]
boardings = 1.0
mix = { cpm = 0.7, forged = 0.1, expired = 0.1, garbage = 0.1 }

[[faults]]
kind = "power_cut"
terminal = "bus-1"
at = "09:00"
"""
