"""The terminal log's files on flash: read the ring, append a flush, read the last lines back.

Loaded by firmware/eventlog.py for one flush or one `log N` and dropped after, so its code is not in RAM
while the terminal takes taps.  The layout and the power-cut rules are in eventlog.py's docstring.
"""

import os

from firmware import eventlog


def load(log):
    """Read the ring once: its files, the next line number and the newest file's size."""
    if log.files is not None:
        return
    try:
        os.mkdir(log.dir)
    except OSError:
        pass
    try:
        names = [n for n in os.listdir(log.dir) if len(n) == 8 and n.isdigit()]
    except OSError:
        names = []
    names.sort()
    log.files = names
    if not names:
        return
    n = int(names[-1])
    size = 0
    try:
        with open(log.dir + "/" + names[-1], "rb") as f:
            for line in f:
                size += len(line)
                n += 1
                if not line.endswith(b"\n"):  # not written by a flush: the next line starts a new file
                    size = eventlog.FILE_BYTES
    except OSError:
        pass
    log.next = n
    log.size = size


def flush(log):
    """Append the noted lines (starting a new file, and dropping the oldest, when full); the number written."""
    load(log)
    lines = log.take()
    done = 0
    try:
        while done < len(lines):
            if not log.files or log.size + len("%d " % log.next) + len(lines[done]) > eventlog.FILE_BYTES:
                _rotate(log)
            out = []
            size = log.size
            n = log.next
            for line in lines[done:]:
                text = "%d %s" % (n, line)
                if out and size + len(text) > eventlog.FILE_BYTES:
                    break
                out.append(text)
                size += len(text)
                n += 1
            with open(log.dir + "/" + log.files[-1], "a") as f:
                f.write("".join(out))
            log.size = size
            log.next = n
            done += len(out)
    except OSError:
        log.errors += 1
        log.lost += len(lines) - done
    return done


def _rotate(log):
    name = "%08d" % log.next
    with open(log.dir + "/" + name, "w"):
        pass
    log.files.append(name)
    log.size = 0
    while len(log.files) > eventlog.FILES:
        try:
            os.remove(log.dir + "/" + log.files[0])
        except OSError:
            pass
        log.files.pop(0)


def tail(log, n):
    """The last `n` lines (at most TAIL_MAX), oldest first, flushed or not."""
    load(log)
    n = max(0, min(n, eventlog.TAIL_MAX))
    out = []
    number = log.next
    for line in log._pending:
        out.append("%d %s" % (number, line.rstrip("\n")))
        number += 1
    out = out[-n:] if n else []
    for name in reversed(log.files):
        if len(out) >= n:
            break
        lines = []
        try:
            with open(log.dir + "/" + name, "rb") as f:
                for line in f:
                    lines.append(_text(line))
                    if len(lines) > n:
                        lines.pop(0)
        except OSError:
            continue
        out = lines[-(n - len(out)):] + out
    return out


def _text(raw):
    """A line read back from flash; one damaged by hand (not UTF-8) is shown as such."""
    try:
        return raw.decode().rstrip("\n")
    except UnicodeError:
        return "<damaged line>"
