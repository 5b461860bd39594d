"""Rate-limited logging for what strangers make the collector say.

Lines caused by unauthenticated peers (connections, refusals, timeouts, floods) go to the logger
`collector.peer`, which passes the first few lines of each kind per interval and then counts the rest:
one summary line per kind and interval says how many were not written.  A flood of 100 000 HELLOs
thus writes a few lines, not megabytes.  Text a peer chose (ERROR text, firmware name) is logged
escaped with `shown()`, so it can never start a forged log line."""

import logging
import time

BURST = 5  # lines of one kind written per interval
INTERVAL = 10.0  # seconds


def shown(text):
    """Peer-supplied text as one printable line: repr-style escapes for newlines and control characters."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    return ascii(str(text))[1:-1]


class RateLimit(logging.Filter):
    """Passes the first `burst` records of each message template per `interval`; the rest are counted
    and summed up on the `summary` logger when the interval is over (flush())."""

    def __init__(self, burst=BURST, interval=INTERVAL, clock=time.monotonic, summary="collector"):
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.summary = logging.getLogger(summary)
        self.started = clock()
        self.counts = {}  # message template -> records seen in this interval
        self.suppressed = 0  # records not written, since start

    def filter(self, record):
        self.flush()
        n = self.counts.get(record.msg, 0) + 1
        self.counts[record.msg] = n
        if n > self.burst:
            self.suppressed += 1
            return False
        return True

    def flush(self, force=False):
        """Write the summary of an interval that is over (or of the current one, with `force`)."""
        now = self.clock()
        if not force and now - self.started < self.interval:
            return
        counts, self.counts = self.counts, {}
        seconds, self.started = now - self.started, now
        for template, n in sorted(counts.items()):
            if n > self.burst:
                self.summary.warning("%d more lines like %r in %.0f s, not logged", n - self.burst, template,
                                     seconds)


peer_log = logging.getLogger("collector.peer")
limit = RateLimit()
peer_log.addFilter(limit)
