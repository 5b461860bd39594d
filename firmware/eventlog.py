"""The terminal's log on /flash/log: the operational lines it prints, kept across reboots for the technician.

A ring of FILES files of at most FILE_BYTES each, named by the number of their first line (log/00000042),
so the newest file and the next line number are found at boot from the names alone.  When the current file
is full the next line starts a new file and the oldest is deleted: the ring moves over the partition and
littlefs spreads the writes, so no one block takes every write.

Lines are noted in RAM (a bounded list; nothing touches flash on the tap path) and written by flush(),
which app.py calls while no passenger waits (the code that reads and writes flash, eventlog_flash.py, is
loaded for that and dropped after).  Each flush is one append and one close of a littlefs file,
which commits all of it or none: a power cut loses at most the lines not flushed yet, never a torn line.

    <line number> <time s> <level> <text>        level: I info, W warning, S security (console logins)

No card data reaches the log: runs of 12 or more digits (a PAN) are hidden, tokens are shown shortened
(short()), and a line is cut at LINE_MAX characters.  What the firmware prints is its operational lines
(boot, uplink, config, declines): capture() makes print() go through say(), which prints and logs them;
the console writes its replies to stdout directly, so they are not logged twice.
"""

import builtins

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
    """`text` as one safe log line: printable ASCII, digit runs of a PAN's length hidden, bounded length.
    A line that needs none of it is returned as it is (no copy: print() goes through here)."""
    text = text[: LINE_MAX * 2]
    run = 0
    for i in range(len(text)):
        ch = text[i]
        if "0" <= ch <= "9":
            run += 1
            if run < DIGITS_HIDDEN:
                continue
        elif " " <= ch <= "~":
            run = 0
            continue
        return _rewrite(text)
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 2] + ".."


def _rewrite(text):
    out = []
    run = 0
    for ch in text:
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
    """The lines noted since the last flush and the counters; what is on flash is read and written by
    firmware/eventlog_flash.py, loaded for a flush and dropped after it (its code need not stay in RAM)."""

    def __init__(self, root, clock):
        self.dir = root + "/" + DIR
        self._clock = clock  # wall-clock seconds (the board's RTC)
        self._pending = []
        self.lost = 0  # lines noted while PENDING_MAX waited (or a flush failed): counted, not kept
        self.lines = 0  # lines noted since boot
        self.alerts = 0  # of which warnings and security lines
        self.errors = 0  # flushes that failed (flash full or broken): the lines are counted in `lost`
        self.files = None  # names of the ring's files, oldest first; None until the ring is read
        self.next = 0  # number of the next line (once the ring is read)
        self.size = 0  # bytes in the newest file

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

    def take(self):
        """The noted lines, handed to a flush."""
        lines = self._pending
        self._pending = []
        return lines

    def flush(self):
        """Append the noted lines to flash; the number written."""
        if not self._pending:
            return 0
        return _with_flash(lambda m: m.flush(self))

    def tail(self, n):
        """The last `n` lines (at most TAIL_MAX), oldest first, flushed or not."""
        return _with_flash(lambda m: m.tail(self, n))


def _with_flash(call):
    import sys

    import firmware
    from firmware import eventlog_flash

    try:
        return call(eventlog_flash)
    finally:
        del sys.modules["firmware.eventlog_flash"]
        delattr(firmware, "eventlog_flash")


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
    text = args[0] if len(args) == 1 and isinstance(args[0], str) else " ".join([str(a) for a in args])
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
