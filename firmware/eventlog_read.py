"""Reading the terminal's log back (the console's `log N`): kept apart from firmware/eventlog.py so that
a terminal nobody services does not hold this code in its heap."""

from firmware import eventlog


def tail(log, n):
    """The last `n` lines of `log` (an EventLog; at most eventlog.TAIL_MAX), oldest first, flushed or not."""
    n = max(0, min(n, eventlog.TAIL_MAX))
    out = []
    pending = log.next
    for line in log._pending:
        out.append("%d %s" % (pending, line.rstrip("\n")))
        pending += 1
    out = out[-n:] if n else []
    for name in reversed(log._files):
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
