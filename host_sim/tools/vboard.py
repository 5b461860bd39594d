"""The virtual board: the unchanged firmware on the MicroPython unix port, wired with ptys.

    console   <- pty -> micropython's stdin/stdout (REPL, raw REPL, firmware prints)
    scanner, nfc, uplink, gps, driver <- pty, paced at the baud rate the firmware set -> board.uart(name)
              (gps: the bus's NMEA receiver, driver: its driver display)
    events    <- pty <- board.outputs() (one JSON line per buzzer/LED/relay/display change)
    flash     one image file: littlefs2 at /flash + the raw journal partition

The launcher plays the parts of a real board that are not software: the USB-serial bridge of the
console (with the board's reset behaviour, so mpremote's soft reset works), the power switch (kill -9
is a power cut, a new process on the same image is the power coming back) and the flash chip's single
owner (an exclusive lock on the image: a second board on the same image is refused).
"""

import argparse
import fcntl
import json
import os
import re
import signal
import subprocess
import termios
import threading
import time

from host_sim import arguments, micropython
from host_sim.emulators import serial_pty
from host_sim.paths import BUILD
from host_sim.tools import build

# `time` for a board on the simulator's clock (`sim run`): first on its MICROPYPATH when clock= is given
SIMCLOCK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device", "simclock")

PERIPHERALS = ("scanner", "nfc", "uplink", "gps", "driver")
# The unix port copies every imported module's bytecode into the heap (~140 KB for the whole terminal),
# where a device build freezes it into flash.  320 KB here is a device's ~192 KB of RAM less the data
# structures that stay, plus room for that bytecode; tests/vboard/test_heap.py guards the budget.  With
# 256 KB, the CPM checks, sealing to the collector and fleet tokens (+10 KB at ready, mostly bytecode)
# left a heap so fragmented that loading the config receiver for a deny-list delta failed (a 1280-byte
# allocation with 99 KB free): the uplink's memory plan (issue 12) is what removes that dependence.
# +20 KB for the bytecode and names of the terminal log (firmware/eventlog.py), the console's line reader
# (firmware/console.py) and the key store (firmware/keystore.py), loaded at boot: with them the unix port's
# interned names pass into a further qstr pool, allocated at once, and the ride-code issuer tables built
# while idle need the room they had (tests/vboard/test_ride_codes.py: fails at 332k, passes at 340k).  A
# device freezes bytecode and names into flash.
# +44 KB for the bytecode of the three products and offline risk (tap state, risk, profiles, bus, GPS, school
# and scenic gate, promotions, bilingual feedback): +30 KB at ready on this port, and a terminal that then
# loads the ride-code modules and generator tables (~55 KB on this port, ~10 KB of it data on a device) ran
# out at 340k while importing a table (tests/host_sim/bench/test_bench_tap.py).
DEFAULT_HEAP = "384k"
# The token key a fresh virtual board ships with (version 0: any provisioned or delivered key replaces
# it), so an unprovisioned development board takes payment taps.  Public, like any dev-kit default.
FACTORY_TOKEN_KEY = (0, bytes(range(32)))
FACTORY_SEAL_KEY = "development"  # the development collector's key (host_sim/backend/sealing.py DEV_KEY)
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit"
CONSOLE_TAIL = 8192  # bytes of console output kept for waits and diagnostics
READY = b"ready: terminal"  # what firmware/app.py prints once it takes taps
BOOT_TIMEOUT_S = 30.0
QUICK_EXIT_S = 1.0
RESET_EXIT = 86  # hardware/boards/virtual_machine.py: the exit status of machine.reset()
RESET_SIGNAL = -signal.SIGUSR1  # ... or its signal (how machine.reset() ends a process running main.py)
MAX_QUICK_EXITS = 3  # then the launcher stops restarting it, as a board stuck in a boot loop is noticed


class FlashInUse(Exception):
    pass


class VirtualBoard:
    """One virtual terminal.  start() builds the firmware, opens the ptys and powers the board on."""

    def __init__(self, flash, heap=DEFAULT_HEAP, uid="5642000001", attach=None, pace=True, journal_kb=None,
                 token_key=FACTORY_TOKEN_KEY, seal_key=FACTORY_SEAL_KEY, clock=None, console_sink=None):
        self.flash = os.path.abspath(flash)
        self.heap = heap
        self.uid = uid
        self.attach = dict(attach or {})
        self.pace = pace
        self.journal_kb = journal_kb  # None: the board's default journal partition
        self.token_key = token_key  # (version, key) installed on a board that holds none; None: no key
        # the collector key the board seals card data to when it holds none: a PEM path, FACTORY_SEAL_KEY
        # (the development collector's, host_sim/backend/sealing.py) or None (no key: card payments declined)
        self.seal_key = seal_key
        self.clock = clock  # path of the simulator's clock file (hardware/boards/virtual.py ZF_CLOCK), or None
        self.console_sink = console_sink  # sink(data): every console byte, whole (the tail below is cut), or None
        self.proc = None
        self.ports = {}
        self.boots = 0
        self._lock_fd = None
        self._fds = []
        self._wires = []
        self._device_slaves = []
        self._raw_repl = False
        self._powered = False
        self._console_tail = bytearray()
        self._console_total = 0  # bytes the console printed since start: marks stay valid as the tail moves
        self._cond = threading.Condition()
        self._watcher = None
        self._spawned_at = 0.0
        self._quick_exits = 0  # firmware processes in a row that failed within QUICK_EXIT_S of starting
        self._crash_looping = False
        self.build_dir = os.path.join(BUILD, "virtual")
        # The board's root filesystem, where code lives (a chip's "/"): next to the image, so that
        # mpremote fs cp and `host_sim flash` write into this board's own copy.
        self.code_dir = self.flash + ".root"

    # -- set-up ------------------------------------------------------------------------------

    def _lock_flash(self):
        fd = os.open(self.flash, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FlashInUse("flash image %s is in use by another virtual board" % self.flash) from None
        self._lock_fd = fd

    def _build(self):
        """Compile the firmware (shared build/virtual) and install it into this board's root."""
        os.makedirs(os.path.dirname(self.build_dir), exist_ok=True)
        with open(self.build_dir + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # boards started in parallel share one build
            build.build("virtual", self.build_dir)
            for _, rel in build.sources("virtual"):
                built = os.path.join(self.build_dir, rel)
                dest = os.path.join(self.code_dir, rel)
                with open(built, "rb") as f:
                    data = f.read()
                if os.path.exists(dest):
                    with open(dest, "rb") as f:
                        if f.read() == data:
                            continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(data)

    def _board_secret(self):
        """The board secret, kept beside the image (<image>.secret) as a chip keeps it in eFuses: outside
        the littlefs partition, so a copy of the partition alone opens no key (firmware/keystore.py)."""
        path = self.flash + ".secret"
        try:
            with open(path, "rb") as f:
                secret = f.read()
            if len(secret) == 32:
                return secret
        except FileNotFoundError:
            pass
        secret = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret

    def _pty(self):
        master, slave, path = serial_pty.open_raw_pty()
        self._fds += [master, slave]
        return master, slave, path

    def _wire_ptys(self):
        env = {}
        # Console: micropython's controlling tty.  Raw, but with ISIG so that a Ctrl-C byte from the
        # host interrupts the running program exactly as it does on a board's USB REPL.
        dev_master, dev_slave, _ = self._pty()
        attr = termios.tcgetattr(dev_slave)
        attr[3] |= termios.ISIG
        termios.tcsetattr(dev_slave, termios.TCSANOW, attr)
        self._console_attr = attr
        host_master, _, host_path = self._pty()
        console = serial_pty.Wire(dev_master, host_master, name="console")
        console.on_device_bytes = self._from_console
        console.on_host_bytes = self._to_console
        self._console = (dev_master, dev_slave, host_master)
        self._wires.append(console)
        self.ports["console"] = host_path
        for name in PERIPHERALS + ("events",):
            if name in self.attach:  # an emulator that owns its own pty: the firmware opens it directly
                path = self.attach[name]
                self.ports[name] = path
            else:
                dev_master, dev_slave, path = self._pty()
                host_master, _, host_path = self._pty()
                baud_of = None
                if self.pace and name != "events":
                    baud_of = (lambda fd=dev_master: serial_pty.line_baud(fd))
                self._wires.append(serial_pty.Wire(dev_master, host_master, baud_of, name=name))
                self._device_slaves.append(dev_slave)
                self.ports[name] = host_path
            env["ZF_UART_" + name.upper() if name != "events" else "ZF_EVENTS"] = path
        self.ports["flash"] = self.flash
        return env

    def start(self):
        self._lock_flash()
        try:
            self._build()
            self._env = dict(os.environ, ZF_FLASH=self.flash, ZF_UID=self.uid, **self._wire_ptys())
            self._env["MICROPYPATH"] = self.code_dir + ":.frozen"
            self._env["ZF_SECRET"] = self._board_secret().hex()
            if self.journal_kb:
                self._env["ZF_JOURNAL_KB"] = str(self.journal_kb)
            self._env.pop("ZF_CLOCK", None)
            if self.clock:
                # the simulator's clock drives time_s (the board) and ticks (host_sim/device/simclock/time.py)
                self._env["ZF_CLOCK"] = os.path.abspath(self.clock)
                self._env["MICROPYPATH"] = SIMCLOCK_DIR + ":" + self._env["MICROPYPATH"]
            self._env.pop("ZF_TOKEN_KEY", None)
            if self.token_key is not None:
                self._env["ZF_TOKEN_KEY"] = "%d:%s" % (self.token_key[0], self.token_key[1].hex())
            self._env.pop("ZF_SEAL_KEY", None)
            if self.seal_key is not None:
                from host_sim.backend import sealing

                self._env["ZF_SEAL_KEY"] = "%0512x" % sealing.public_modulus(
                    None if self.seal_key == FACTORY_SEAL_KEY else self.seal_key)
            self.power_on()
        except BaseException:
            self.stop()
            raise
        return self

    # -- console bridge --------------------------------------------------------------------

    def _from_console(self, data):
        if self.console_sink is not None:
            self.console_sink(data)
        with self._cond:
            self._console_tail += data
            self._console_total += len(data)
            del self._console_tail[:-CONSOLE_TAIL]
            if RAW_REPL_BANNER in self._console_tail[-(len(data) + 32):]:
                self._raw_repl = True
            self._cond.notify_all()
        return data

    def _to_console(self, data):
        if b"\x02" in data:  # Ctrl-B leaves the raw REPL
            self._raw_repl = False
        return data

    def console_text(self):
        with self._cond:
            return bytes(self._console_tail).decode("utf-8", "replace")

    def console_mark(self):
        """A position in the console output, for wait_console(since=...)."""
        with self._cond:
            return self._console_total

    def console_since(self, mark):
        """The console output after position `mark` (console_mark()), as far as the kept tail reaches."""
        with self._cond:
            return bytes(self._console_tail[max(0, mark - (self._console_total - len(self._console_tail))):])

    def wait_console(self, needle, timeout=10.0, since=0):
        """Wait until the console printed `needle` (bytes) after position `since` (console_mark())."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle not in self._console_tail[max(0, since - (self._console_total - len(self._console_tail))):]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("console never printed %r; last output:\n%s"
                                       % (needle, self._console_tail[-600:].decode("utf-8", "replace")))
                self._cond.wait(left)

    # -- power -----------------------------------------------------------------------------

    def _spawn(self, entry):
        dev_master, dev_slave, _ = self._console

        def become_console_session():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        for fd in self._device_slaves + [dev_slave]:
            serial_pty.drop_pending_input(fd)
        # A killed REPL leaves its own terminal mode behind (no ISIG): restore the board's.
        termios.tcsetattr(dev_slave, termios.TCSANOW, self._console_attr)
        self.proc = subprocess.Popen(
            [micropython.command(), "-X", "heapsize=" + self.heap, "-i", os.path.join(self.code_dir, entry)],
            stdin=dev_slave, stdout=dev_slave, stderr=dev_slave, env=self._env, cwd=self.code_dir,
            preexec_fn=become_console_session, pass_fds=(self._lock_fd,))
        self.boots += 1
        self._spawned_at = time.monotonic()
        self._powered = True
        self._watcher = threading.Thread(target=self._watch, args=(self.proc,), daemon=True)
        self._watcher.start()

    def _watch(self, proc):
        """A firmware process that ends by itself was reset (soft reset, machine.reset()): reboot it."""
        proc.wait()
        if not self._powered or proc is not self.proc:
            return
        failed_fast = (proc.returncode not in (0, RESET_EXIT, RESET_SIGNAL)
                       and time.monotonic() - self._spawned_at < QUICK_EXIT_S)
        self._quick_exits = self._quick_exits + 1 if failed_fast else 0
        if self._quick_exits >= MAX_QUICK_EXITS:
            with self._cond:
                self._crash_looping = True
                self._cond.notify_all()
            return
        dev_master, _, host_master = self._console
        if proc.returncode in (RESET_EXIT, RESET_SIGNAL):  # machine.reset(): a hard reset runs main.py, any REPL mode
            self._raw_repl = False
            self._spawn("main.py")
            return
        try:
            os.write(host_master, b"MPY: soft reboot\r\n")
        except BlockingIOError:  # nobody reads the console: the notice is lost, as on a real bridge
            pass
        if self._raw_repl:  # a soft reset from the raw REPL skips main.py and stays in the raw REPL
            mark = self.console_mark()
            self._spawn("boot.py")
            try:  # Ctrl-A only once the REPL reads: typed earlier, the port's terminal set-up flushes it
                self.wait_console(b">>> ", timeout=10, since=mark)
            except TimeoutError:
                pass
            os.write(dev_master, b"\x01")
        else:
            self._spawn("main.py")

    def wait_booted(self, timeout=BOOT_TIMEOUT_S):
        """None once the firmware says it is ready; else why it did not boot (its last error line)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while READY not in self._console_tail:
                # Stopped means: at the REPL prompt (main.py raised) or the process gone.
                stopped = self._console_tail.rstrip().endswith(b">>>") or self._crash_looping
                failure = stopped and _boot_failure(bytes(self._console_tail))
                if failure:
                    return failure
                left = deadline - time.monotonic()
                if left <= 0:
                    return "no ready line from the firmware within %d s" % timeout
                self._cond.wait(min(left, 0.2))
        return None

    def power_on(self):
        self._raw_repl = False
        self._spawn("main.py")

    def power_cut(self):
        """kill -9: whatever the firmware had not written to flash is gone."""
        self._powered = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.power_cut()
        self.power_on()

    def stop(self):
        self.power_cut()
        for wire in self._wires:
            wire.close()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        self._wires = []
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(args):
    board = VirtualBoard(args.flash, heap=args.heap, uid=args.uid, pace=not args.no_pace,
                         attach={k: getattr(args, k) for k in PERIPHERALS if getattr(args, k)})
    try:
        board.start()
    except FlashInUse as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    failure = board.wait_booted()
    if failure:
        board.stop()
        print(json.dumps({"error": "the firmware did not boot: " + failure, "flash": board.flash}), flush=True)
        return 1
    print(json.dumps(board.ports), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    return 0


def _boot_failure(console):
    """The error line of a firmware that failed to start (a traceback's last line, a refused option)."""
    text = console.decode("utf-8", "replace")
    if "Invalid command line arguments" in text:
        return "MicroPython refused its command line (check --heap)"
    if "Traceback (most recent call last)" in text:
        for line in text[text.rindex("Traceback"):].splitlines()[1:]:
            if line and not line.startswith(" "):
                return line.strip()
    return None


def heap_size(text):
    """A MicroPython heap size: digits with an optional k or m suffix."""
    if not re.fullmatch(r"[0-9]+[kKmM]?", text):
        raise argparse.ArgumentTypeError("%r is not a heap size such as 256k" % text)
    return text


def board_uid(text):
    """The board's unique id: 1 to 16 bytes as hex, like machine.unique_id()."""
    try:
        uid = bytes.fromhex(text)
    except ValueError:
        uid = b""
    if not 1 <= len(uid) <= 16 or len(text) != 2 * len(uid):
        raise argparse.ArgumentTypeError("%r is not a hex id of 1 to 16 bytes" % text)
    return text


def add_arguments(parser):
    parser.add_argument("--flash", default="vboard-flash.img", type=arguments.new_file,
                        help="flash image file (created if missing)")
    parser.add_argument("--heap", default=DEFAULT_HEAP, type=heap_size,
                        help="MicroPython heap size, like a board's RAM")
    parser.add_argument("--uid", default="5642000001", type=board_uid, help="the board's unique id, hex")
    parser.add_argument("--no-pace", action="store_true", help="do not pace peripheral ptys at their baud rate")
    for name in PERIPHERALS:
        parser.add_argument("--" + name, metavar="PATH", type=arguments.serial_port,
                            help="attach the %s UART to an existing pty" % name)
