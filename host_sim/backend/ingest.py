"""Group commit for the collector: many links' frames share one transaction and one fsync.

A link's Session acknowledges a RECORDS frame as soon as its handler stored the records, and the
acknowledgement comes back in the bytes receive() returns.  Inside `Store.group()` the records are
only staged, so those reply bytes must not reach the terminal before the group has committed.
`receive_group()` keeps that rule in one place: it hands out the replies only after the commit, and
on a failed commit hands out none, because the sessions already count those frames as received.  A
caller must then close those links; each terminal reconnects, sends its unacknowledged records again,
and the store ignores the ones it has (terminal id, sequence), so nothing is lost or stored twice.

`GroupCommitter` does this for the served collector (host_sim/backend/tcp_server.py): every link's
read that completes in one pass of the event loop joins the same group.  Under load the loop is busy
committing while more bytes arrive, so groups grow with the load and the fsyncs per record shrink.
A group takes at most GROUP_BYTES of input (the rest waits for the next one), so the event loop, and
the handshakes it serves, never waits long for a commit; after a group that held SQLite's write lock
for a while, the next one starts only after a pause of a quarter of that time, so another process
(the `acquirer` command, a report) gets the lock within its busy timeout however hard terminals push.

A group that cannot begin (PostgreSQL restarting or out of reach) runs nothing: its frames wait, the
links stay open and unacknowledged, and the group is tried again every RETRY_S until the database
answers.
"""

import asyncio
import logging
import time

from host_sim.backend.store import StoreError, StoreUnavailable

log = logging.getLogger("collector")

GROUP_BYTES = 64 * 1024
PAUSE_SHARE = 0.25  # pause after a group, as a share of the time it held the write lock
PAUSE_FROM = 0.005  # s; groups shorter than this need no pause
RETRY_S = 0.5  # s between tries of a group whose database is out of reach


def receive_group(store, inputs):
    """Feed each (session, data) of `inputs` to its session inside one group commit.

    Returns the replies (bytes, in the order of `inputs`) once the commit has returned, or None when
    the commit failed and nothing may be sent.  Raises StoreUnavailable, before any session saw its
    input, when the group could not begin."""
    try:
        with store.group():
            replies = [session.receive(data) for session, data in inputs]
    except StoreUnavailable:
        raise
    except StoreError:
        return None
    return replies


class GroupCommitter:
    """Collects (session, data) from the links of one asyncio loop and commits them together."""

    def __init__(self, store):
        self.store = store
        self._waiting = []  # (session, data, future) for the next group
        self._scheduled = False
        self._resume_at = 0.0  # loop time before which no group starts (the pause after a long one)
        self.groups = 0
        self.frames_in_groups = 0
        self.unavailable = 0  # groups that could not begin (the database out of reach)

    def receive(self, session, data):
        """Awaitable reply bytes for `data`, released after the group holding it has committed;
        raises StoreError if that commit failed (then close the link)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((session, data, done))
        self._schedule(loop)
        return done

    def _schedule(self, loop):
        if self._scheduled or not self._waiting:
            return
        self._scheduled = True
        if loop.time() < self._resume_at:
            loop.call_at(self._resume_at, self._commit, loop)
        else:
            loop.call_soon(self._commit, loop)  # after the reads already completed in this loop pass

    def _commit(self, loop):
        self._scheduled = False
        size = n = 0
        while n < len(self._waiting) and (n == 0 or size + len(self._waiting[n][1]) <= GROUP_BYTES):
            size += len(self._waiting[n][1])
            n += 1
        waiting, self._waiting = self._waiting[:n], self._waiting[n:]
        t0 = time.perf_counter()
        try:
            replies = receive_group(self.store, [(session, data) for session, data, _ in waiting])
        except StoreUnavailable as e:  # nothing ran: the frames wait, their links stay open
            if not self.unavailable:
                log.warning("%s; %d frames wait, tried again every %g s", e, len(waiting), RETRY_S)
            self.unavailable += 1
            self._waiting[:0] = waiting
            self._resume_at = loop.time() + RETRY_S
            self._schedule(loop)
            return
        if self.unavailable:
            log.warning("the database answers again after %d tries: ingest resumes", self.unavailable)
            self.unavailable = 0
        held = time.perf_counter() - t0
        if held >= PAUSE_FROM:
            self._resume_at = loop.time() + held * PAUSE_SHARE
        self._schedule(loop)
        self.groups += 1
        self.frames_in_groups += len(waiting)
        for i, (_, _, done) in enumerate(waiting):
            if done.cancelled():
                continue
            if replies is None:
                done.set_exception(StoreError("group commit failed"))
            else:
                done.set_result(replies[i])
