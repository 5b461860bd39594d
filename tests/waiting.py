"""Waiting in tests: poll the condition a test is really waiting for instead of sleeping a fixed time,
so a fast machine does not wait for nothing and a slow one does not fail at random."""

import time


def wait_until(predicate, timeout=10.0, interval=0.1, what="the condition", context=None):
    """Call `predicate` every `interval` seconds until it returns something truthy, and return that.

    After `timeout` seconds fail the test with a message naming `what` and the predicate's last value;
    `context` (a callable returning text, e.g. a board's console_text) adds the last of its output to the
    message, which is usually what explains why the event never came."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = "waited %g s for %s; last value: %r" % (timeout, what, value)
            if context is not None:
                message += "\n" + context()[-3000:]
            raise AssertionError(message)
        time.sleep(interval)
