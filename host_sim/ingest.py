"""Group commit for the collector: many links' frames share one SQLite transaction and one fsync.

A link's Session acknowledges a RECORDS frame as soon as its handler stored the records, and the
acknowledgement comes back in the bytes receive() returns.  Inside `Store.group()` the records are
only staged, so those reply bytes must not reach the terminal before the group has committed.
`receive_group()` keeps that rule in one place: it hands out the replies only after the commit, and
on a failed commit hands out none, because the sessions already count those frames as received.  A
caller must then close those links; each terminal reconnects, sends its unacknowledged records again,
and the store ignores the ones it has (terminal id, sequence), so nothing is lost or stored twice.
"""

from host_sim.collector import StoreError


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
