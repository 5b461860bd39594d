"""Boot: the journal's taps the per-credential state (firmware/tapstate.py) missed, applied to it.

A power cut between a tap's journal append and its state write leaves the state one record behind; a
first boot with state starts it from the journal's last taps.  At most REPLAY_MAX records, so a boot
stays short whatever the journal holds; every entry keeps the sequence number of the record it last
took, so a record is never applied twice.  Loaded only when the journal is ahead of the state.
"""

from firmware.tapstate import KEY
from protocol import record

REPLAY_MAX = 64  # records a boot replays at most: a power cut costs the state one


def replay(state, journal, account):
    """Apply the journal's records after state.applied (see TapState.replay); how many were applied."""
    last = journal.next_seq - 1
    applied = max(state.applied, last - REPLAY_MAX)
    done = 0
    acked = journal.acked
    for data in journal.recent(REPLAY_MAX):  # acknowledged ones first, oldest first: read_after skips them
        if record.seq_of(data) <= acked:
            done += _one(state, data, applied, account)
    out = bytearray(4 * record.MAX_SIZE)
    seq = max(applied, acked)
    while True:
        views = journal.read_after(seq, out, 4 * record.MAX_SIZE + 64)
        if not views:
            break
        for v in views:
            data = bytes(v)
            seq = record.seq_of(data)
            done += _one(state, data, applied, account)
    if done:
        print("tap state: %d journal records replayed" % done)
    return done


def _one(state, data, applied, account):
    try:
        rec = record.decode(data)
    except record.RecordError:
        return 0
    seq = rec["seq"]
    token = rec["token"]
    if seq <= applied or len(token) < KEY:
        return 0
    e = state.get(token)
    if e is not None and e.seq >= seq:
        return 0
    after = account(e, rec)
    if after is None:
        return 0
    state.put(token, after, seq)
    return 1
