"""Group commit for the collector: many links' frames share one SQLite transaction and one fsync.

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
"""

import asyncio

from host_sim.backend.store import StoreError


def receive_group(store, inputs):
    """Feed each (session, data) of `inputs` to its session inside one group commit.

    Returns the replies (bytes, in the order of `inputs`) once the commit has returned, or None when
    the commit failed and nothing may be sent."""
    try:
        with store.group():
            replies = [session.receive(data) for session, data in inputs]
    except StoreError:
        return None
    return replies


class GroupCommitter:
    """Collects (session, data) from the links of one asyncio loop and commits them together."""

    def __init__(self, store):
        self.store = store
        self._waiting = []  # (session, data, future) for the next group
        self.groups = 0
        self.frames_in_groups = 0

    def receive(self, session, data):
        """Awaitable reply bytes for `data`, released after the group holding it has committed;
        raises StoreError if that commit failed (then close the link)."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._commit)  # after the reads already completed in this loop pass
        done = loop.create_future()
        self._waiting.append((session, data, done))
        return done

    def _commit(self):
        waiting, self._waiting = self._waiting, []
        replies = receive_group(self.store, [(session, data) for session, data, _ in waiting])
        self.groups += 1
        self.frames_in_groups += len(waiting)
        for i, (_, _, done) in enumerate(waiting):
            if done.cancelled():
                continue
            if replies is None:
                done.set_exception(StoreError("group commit failed"))
            else:
                done.set_result(replies[i])
