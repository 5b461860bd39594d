"""Group commit in the served collector (host_sim/backend/ingest.py GroupCommitter, tcp_server.serve_tcp): reads of
several links in one loop pass share one commit, replies wait for it, a failed commit closes the links
and acknowledges nothing; the acquirer decides stored records afterwards, outside the group."""

import asyncio
import json
import sqlite3
import subprocess
import sys

from host_sim.backend import acquirer, backoffice, ingest
from host_sim.backend.store import Store, StoreError
from host_sim.bench import collector as bench_collector
from host_sim.tools import build
from protocol import fleet, record
from tests.host_sim.helpers import FailingStore, committed_counts, connect_session


class CountingStore(Store):
    """Notes, at each commit, how many replies had already been handed out (must be none of its group)."""

    def __init__(self, path):
        super().__init__(path)
        self.handed_out = []
        self.at_commit = []

    def _committed(self):
        self.at_commit.append(len(self.handed_out))
        super()._committed()


def test_reads_of_one_loop_pass_share_one_commit_and_replies_wait_for_it(db):
    store = CountingStore(db)
    terms = [bench_collector.Terminal(i, 30, window=16, max_frame=512) for i in range(3)]
    for t in terms:
        store.register(t.ident.hex(), t.key)
    sessions = [connect_session(store, t) for t in terms]

    async def one_pass():
        committer = ingest.GroupCommitter(store)
        for t in terms:
            t.fill()
        waits = [committer.receive(s, t.take(len(t.outbox))) for s, t in zip(sessions, terms)]
        replies = []
        for w in waits:
            replies.append(await w)
            store.handed_out.append(replies[-1])
        return committer, replies

    commits = store.commits
    committer, replies = asyncio.run(one_pass())
    assert store.commits == commits + 1 and (committer.groups, committer.frames_in_groups) == (1, 3)
    assert store.at_commit[-1] == 0  # no reply of the group was out before its commit
    for t, reply in zip(terms, replies):
        t.feed(reply)
        assert t.done()
    assert committed_counts(db) == (90, 30)
    store.close()


def test_a_failed_group_commit_raises_for_every_link_of_the_group(db):
    store = FailingStore(db)
    terms = [bench_collector.Terminal(i, 10, window=16, max_frame=512) for i in range(2)]
    for t in terms:
        store.register(t.ident.hex(), t.key)
    sessions = [connect_session(store, t) for t in terms]
    store.fail = 1

    async def one_pass():
        committer = ingest.GroupCommitter(store)
        for t in terms:
            t.fill()
        waits = [committer.receive(s, t.take(len(t.outbox))) for s, t in zip(sessions, terms)]
        return await asyncio.gather(*waits, return_exceptions=True)

    outcomes = asyncio.run(one_pass())
    assert all(isinstance(o, StoreError) for o in outcomes)
    assert store.query("SELECT count(*) FROM records") == [(0,)]
    store.close()


def test_records_commit_in_the_group_and_are_authorised_after_it(db):
    store = FailingStore(db)
    term = bench_collector.Terminal(0, 12, window=16, max_frame=512)
    store.register(term.ident.hex(), term.key)
    store.set_delivered(term.ident.hex(), fleet.KIND_TOKEN_KEY, store.token_key()[0])  # provisioned with it
    atcs = {int.from_bytes(record.decode(r)["ext"][record.EXT_ATC], "big")
            for r in term.records[:2]}
    office = backoffice.Backoffice(store, acquirer.Acquirer({"decline_atcs": sorted(atcs)}))
    session = connect_session(store, term, office)
    store.fail = 1  # the first group fails: no records remain, so nothing is pending either
    term.fill()
    assert ingest.receive_group(store, [(session, term.take(len(term.outbox)))]) is None
    assert office.authorise_pending().approved == 0
    assert store.query("SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM authorisations),"
                       " (SELECT count(*) FROM deny_list)") == [(0, 0, 0)]
    again = bench_collector.Terminal(0, 12, window=16, max_frame=512)
    session = connect_session(store, again, office)
    again.fill()
    [reply] = ingest.receive_group(store, [(session, again.take(len(again.outbox)))])
    again.feed(reply)
    assert again.done()  # acknowledged once stored: the acquirer has not been asked yet
    assert store.query("SELECT count(*) FROM authorisations") == [(0,)] and session.offer is None
    office.authorise_pending()
    assert store.query("SELECT approved, count(*) FROM authorisations GROUP BY approved") == [(0, 2), (1, 10)]
    assert store.deny_list_version() >= 1
    session.receive(b"")  # the session's next tick offers the new deny list
    assert session.offer is not None
    store.close()


def test_bench_collector_served_stores_exactly_once_through_the_real_server(tmp_path):
    cmd = [sys.executable, "-m", "host_sim", "bench", "collector", "--served", "--records", "3000",
           "--db", str(tmp_path / "c.db"), "--json"]
    proc = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["stored"] == result["distinct"] == result["acknowledged"] == result["authorised"] == 3000
    assert result["served"] == "tcp" and result["records_per_s"] > 0
    assert 0 < result["group_commits"] <= result["frames"]
    con = sqlite3.connect(str(tmp_path / "c.db"))
    assert con.execute("SELECT count(*) FROM records").fetchone() == (3000,)
    con.close()


def test_a_frame_that_fails_inside_a_group_leaves_nothing_staged_and_the_rest_commits(db):
    store = Store(db)
    recs = []
    for raw in bench_collector.Terminal(0, 4, window=4, max_frame=512).records:
        r = record.decode(raw)
        r["raw"] = raw
        recs.append(r)
    with store.group():
        store.store(recs[:2])
        try:
            with store.transaction():
                store.store(recs[2:])
                raise sqlite3.OperationalError("the acquirer's insert failed (injected)")
        except sqlite3.OperationalError:
            pass
    assert committed_counts(db) == (2, 2)  # the failed unit's records were rolled back to its savepoint
    store.close()
