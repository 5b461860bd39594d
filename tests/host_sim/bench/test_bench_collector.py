"""`bench collector` and the Store's group commit: exactly once, every ACK only after the commit that
covers it, and a failed group commit acknowledges nothing (no timings asserted)."""

import json
import subprocess
import sys

from host_sim.backend import ingest
from host_sim.backend.store import Store
from host_sim.bench import collector as bench_collector
from host_sim.tools import build
from tests.host_sim.helpers import FailingStore, committed_counts, connect_session

KEYS = {"records_per_s", "frames_per_s", "records_per_frame", "commit_every", "cpu_seconds", "stored",
        "acknowledged", "acked_not_committed", "duplicate_receipts"}


def test_bench_collector_command_stores_2000_records_exactly_once_and_acks_after_commit():
    cmd = [sys.executable, "-m", "host_sim", "bench", "collector", "--records", "2000", "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["stored"] == result["distinct"] == result["acknowledged"] == 2000
    assert result["acked_not_committed"] == 0 and result["duplicate_receipts"] == 0
    assert result["group_commit"] is True
    assert result["commit_every"] > 1  # frames of several links really shared commits
    assert result["commits"] < result["frames"]


def test_per_frame_commits_store_exactly_once(tmp_path):
    result = bench_collector.run_ingest(str(tmp_path / "c.db"), records=300, terminals=2, group=False)
    assert result["stored"] == result["distinct"] == result["acknowledged"] == 300
    assert result["acked_not_committed"] == 0
    assert result["commits"] == result["frames"]  # one commit per RECORDS frame


def test_a_failed_group_commit_sends_no_ack_and_the_resent_records_are_stored_once(tmp_path):
    db = str(tmp_path / "c.db")
    store = FailingStore(db)
    term = bench_collector.Terminal(0, 60, window=16, max_frame=512)
    store.register(term.ident.hex(), term.key)
    session = connect_session(store, term)
    # one good group: some records committed and acknowledged
    term.fill()
    replies = ingest.receive_group(store, [(session, term.take(1500))])
    assert replies is not None
    term.feed(replies[0])
    first = term.peer.sender.delivered_tag
    assert 0 < first < 60 and committed_counts(db) == (first, first)
    # the next commit fails: nothing to send, nothing stored, the terminal saw no new ACK
    store.fail = 1
    term.fill()
    assert ingest.receive_group(store, [(session, term.take(len(term.outbox)))]) is None
    assert committed_counts(db) == (first, first)
    assert term.peer.sender.delivered_tag == first
    # the link is dropped; the terminal reconnects and sends everything it holds (from its journal)
    again = bench_collector.Terminal(0, 60, window=16, max_frame=512)
    session = connect_session(store, again)
    for _ in range(20):
        if again.done():
            break
        again.fill()
        replies = ingest.receive_group(store, [(session, again.take(len(again.outbox)))])
        again.feed(replies[0])
    assert again.done()
    assert committed_counts(db) == (60, 60)
    assert session.duplicate_receipts == first and session.stored == 60 - first
    store.close()


def test_store_outside_a_group_commits_at_once_and_groups_do_not_nest(tmp_path):
    db = str(tmp_path / "c.db")
    store = Store(db)
    term = bench_collector.Terminal(0, 3, window=4, max_frame=512)
    from protocol import record

    recs = []
    for raw in term.records:
        r = record.decode(raw)
        r["raw"] = raw
        recs.append(r)
    assert store.store(recs[:2]) == 2 and committed_counts(db) == (2, 2)
    with store.group():
        assert store.store(recs) == 1  # the two it has are ignored
        assert committed_counts(db) == (2, 2)  # staged, not yet visible to anyone else
        try:
            with store.group():
                pass
            raise AssertionError("a nested group must be refused")
        except RuntimeError:
            pass
    assert committed_counts(db) == (3, 3)
    store.close()
