"""The terminal's log on /flash/log: the operational lines it prints, kept across reboots for the technician.

A ring of FILES files of at most FILE_BYTES each, named by the number of their first line (log/00000042),
so the newest file and the next line number are found at boot from the names alone.  When the current file
is full the next line starts a new file and the oldest is deleted: the ring moves over the partition and
littlefs spreads the writes, so no one block takes every write.

Lines are noted in RAM (a bounded list; nothing touches flash on the tap path) and written by flush(),
which app.py calls while no passenger waits.  Each flush is one append and one close of a littlefs file,
which commits all of it or none: a power cut loses at most the lines not flushed yet, never a torn line.

    <line number> <time s> <level> <text>        level: I info, W warning, S security (console logins)

No card data reaches the log: runs of 12 or more digits (a PAN) are hidden, tokens are shown shortened
(short()), and a line is cut at LINE_MAX characters.  What the firmware prints is its operational lines
(boot, uplink, config, declines): capture() makes print() go through say(), which prints and logs them;
the console writes its replies to stdout directly, so they are not logged twice.
"""

import builtins
import os

DIR = "log"
FILE_BYTES = 4096
FILES = 4  # 16 KB on flash
PENDING_MAX = 32  # lines waiting for a flush; more are counted in `lost`
LINE_MAX = 160
TAIL_MAX = 200  # lines one `log N` shows
DIGITS_HIDDEN = 12
# Lines the journal already keeps (an accepted tap is a record): printed, not logged.
SKIP = ("tap #", "tap repeats #", "payment code: request")
WARN = ("uplink: link down", "uplink: host refused", "uplink: config refused", "uplink: out of memory",
        "scanner: stopped", "nfc: PN532 stopped", "nfc: no PN532", "tap declined: terminal error")

_log = None  # the terminal's EventLog once capture() ran
_print = print  # the builtin, kept before capture() replaces it


def short(token):
    """A token (bytes) as the console and the log show it: its first 4 bytes in hex."""
    return bytes(token[:4]).hex() + ".."


def clean(text):
    """`text` as one safe log line: printable ASCII, digit runs of a PAN's length hidden, bounded length."""
    out = []
    run = 0
    for ch in text[: LINE_MAX * 2]:
        if "0" <= ch <= "9":
            run += 1
            out.append(ch)
            if run == DIGITS_HIDDEN:
                del out[-DIGITS_HIDDEN:]
                out.append("<digits>")
            elif run > DIGITS_HIDDEN:
                out.pop()
            continue
        run = 0
        out.append(ch if " " <= ch <= "~" else "?")
    line = "".join(out)
    return line if len(line) <= LINE_MAX else line[: LINE_MAX - 2] + ".."


class EventLog:
    def __init__(self, root, clock):
        self.dir = root + "/" + DIR
        self._clock = clock  # wall-clock seconds (the board's RTC)
        self._pending = []
        self.lost = 0  # lines noted while PENDING_MAX waited (or a flush failed): counted, not kept
        self.lines = 0  # lines noted since boot
        self.alerts = 0  # of which warnings and security lines
        self.errors = 0  # flushes that failed (flash full or broken): the lines are counted in `lost`
        self._files = self._names()
        self.next = 0  # number of the next line
        self._size = 0  # bytes in the newest file
        if self._files:
            self._scan(self._files[-1])

    def _names(self):
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        try:
            names = [n for n in os.listdir(self.dir) if len(n) == 8 and n.isdigit()]
        except OSError:
            return []
        names.sort()
        return names

    def _scan(self, name):
        """Next line number and size from the newest file (a file written by whole flushes)."""
        n = int(name)
        size = 0
        try:
            with open(self.dir + "/" + name, "rb") as f:
                for line in f:
                    size += len(line)
                    n += 1
                    if not line.endswith(b"\n"):  # not written by a flush: the next line starts a new file
                        size = FILE_BYTES
        except OSError:
            pass
        self.next = n
        self._size = size

    def note(self, text, level="I"):
        """Keep one line (cleaned) for the next flush; never touches flash."""
        self.lines += 1
        if level != "I":
            self.alerts += 1
        if len(self._pending) >= PENDING_MAX:
            self.lost += 1
            return
        self._pending.append("%d %s %s\n" % (int(self._clock()), level, clean(text)))

    def pending(self):
        return len(self._pending)

    def tail(self, n):
        """The last `n` lines (at most TAIL_MAX), oldest first, flushed or not (firmware/eventlog_read.py:
        loaded only when a technician reads the log)."""
        from firmware import eventlog_read

        return eventlog_read.tail(self, n)

    def flush(self):
        """Append the noted lines to flash (starting a new file, and dropping the oldest, when full)."""
        lines = self._pending
        if not lines:
            return 0
        self._pending = []
        done = 0
        try:
            while done < len(lines):
                if not self._files or self._size + len("%d " % self.next) + len(lines[done]) > FILE_BYTES:
                    self._rotate()
                out = []
                size = self._size
                n = self.next
                for line in lines[done:]:
                    text = "%d %s" % (n, line)
                    if out and size + len(text) > FILE_BYTES:
                        break
                    out.append(text)
                    size += len(text)
                    n += 1
                with open(self.dir + "/" + self._files[-1], "a") as f:
                    f.write("".join(out))
                self._size = size
                self.next = n
                done += len(out)
        except OSError:
            self.errors += 1
            self.lost += len(lines) - done
        return done

    def _rotate(self):
        name = "%08d" % self.next
        with open(self.dir + "/" + name, "w"):
            pass
        self._files.append(name)
        self._size = 0
        while len(self._files) > FILES:
            try:
                os.remove(self.dir + "/" + self._files[0])
            except OSError:
                pass
            self._files.pop(0)


def level_of(text):
    for prefix in WARN:
        if text.startswith(prefix):
            return "W"
    return "I"


def say(*args, **kw):
    """print() for operational lines: printed as before, and kept in the log unless the journal keeps them."""
    _print(*args, **kw)
    if _log is None or not args:
        return
    text = " ".join([a if isinstance(a, str) else str(a) for a in args])
    for prefix in SKIP:
        if text.startswith(prefix):
            return
    _log.note(text, level_of(text))


def note(text, level="I"):
    """Log a line without printing it (the console's security lines); nothing without a log."""
    if _log is not None:
        _log.note(text, level)


def capture(log):
    """Make `log` the terminal's log and have every print() go through say()."""
    global _log
    _log = log
    builtins.print = say


def counts():
    """(lines, alerts) noted since boot, for STATUS; () without a log (the 34-byte STATUS)."""
    return () if _log is None else (_log.lines, _log.alerts)


def active():
    """The terminal's log, or None (a test that runs no terminal)."""
    return _log
