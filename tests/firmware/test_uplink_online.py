"""The uplink's online request path (firmware/uplink.py): RECORDS never take the last window slot, so an
ONLINE_REQUEST goes out at once behind a full backlog; its result is matched by request id and a late
one is ignored.  CPython, with a real Peer pair (the collector's Session) and a journal stand-in."""

import asyncio
import time

import pytest

from firmware.uplink import Uplink
from host_sim.backend import backoffice, host_session
from protocol import link, record
from tests.host_sim.helpers import TERMINAL, ListeningTerminal, registered


@pytest.fixture(autouse=True)
def micropython_time(monkeypatch):
    """MicroPython's ticks and asyncio.wait_for_ms, for the uplink on CPython."""
    monkeypatch.setattr(time, "ticks_ms", lambda: int(time.monotonic() * 1000), raising=False)
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    monkeypatch.setattr(asyncio, "wait_for_ms", lambda aw, ms: asyncio.wait_for(aw, ms / 1000), raising=False)


class Board:
    def runtime(self):
        return "test"


class Backlog:
    """A journal holding `n` accepted records, none acknowledged."""

    def __init__(self, n):
        self.recs = [record.encode(TERMINAL, s, 1_800_000_000, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                                   bytes(16), [(record.EXT_ATC, bytes([0, s & 0xFF]))]) for s in range(1, n + 1)]
        self.next_seq = n + 1
        self.acked = 0

    def read_after(self, seq, out, room, terminal=None):
        """The journal cursor's contract: the records after `seq` that one RECORDS body of `room` holds."""
        batch = []
        for rec in self.recs[seq:]:
            if link.records_size(batch + [rec], terminal) > room:
                break
            batch.append(rec)
        return batch


def test_an_online_request_gets_the_slot_records_leave_free(tmp_path):
    store = registered(tmp_path)
    t = ListeningTerminal(host_session.Session(store, backoffice=backoffice.Backoffice(store))).pump()
    up = Uplink(Board(), Backlog(200), TERMINAL, str(tmp_path), cfg={})
    p = up.peer = t.peer
    up._fill(p)
    window = p.sender.window
    assert window > 1 and p.sender.in_flight() == window - 1  # the backlog stops one short
    up._online_out = link.online_request(7, 1, 200, 156, 2000, b"6222021234567890123")
    up._send_online(p)
    assert p.sender.in_flight() == window and up._online_out is None
    t.pump()  # the collector (no acquirer) answers "unavailable" to request 7
    [res] = t.take("ONLINE_RESULT")
    assert (res["request_id"], res["result"]) == (7, link.ONLINE_UNAVAILABLE)


def test_results_are_matched_by_request_id(tmp_path):
    up = Uplink(Board(), Backlog(0), TERMINAL, str(tmp_path), cfg={})

    async def scenario():
        waiting = asyncio.ensure_future(up.authorise(9, 1, 200, 156, 300, b"6222021234567890123"))
        await asyncio.sleep(0.01)
        up._on_online_result({"request_id": 8, "result": link.ONLINE_APPROVED})  # late, another request
        up._on_online_result({"request_id": 9, "result": link.ONLINE_DECLINED, "reason": "invalid code"})
        return await waiting, await up.authorise(10, 1, 200, 156, 50, b"6222021234567890123")

    got, none = asyncio.run(scenario())
    assert (got["request_id"], got["result"]) == (9, link.ONLINE_DECLINED)
    assert none is None and up._online_out is None  # nothing answered in time, nothing left to send

