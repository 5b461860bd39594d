"""A record under a (terminal, seq) the store already holds with other bytes is kept aside, never merged."""

from hypothesis import given, settings
from hypothesis import strategies as st

from host_sim.backend.store import Store
from protocol import record

TERMINAL = bytes.fromhex("5642000001000000")


def tap(seq, amount, token=b"\x01" * 16):
    raw = record.encode(TERMINAL, seq, 1767225600 + seq, record.KIND_QR_CPM, amount, 156, record.ACCEPTED,
                        record.REASON_NONE, 1, token)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def test_a_resend_is_no_conflict_and_another_record_under_the_same_number_is_kept_aside(db):
    store = Store(db)
    first = tap(5, 200)
    assert store.store([first]) == 1
    assert store.store([first]) == 0 and store.conflicts() == []  # a resend after a lost ACK
    other = tap(5, 350)
    assert store.store([other, tap(6, 200)]) == 1  # #6 is new, the other #5 is not stored over #5
    assert store.store([other]) == 0
    assert store.conflicts() == [(TERMINAL.hex(), 5, other["raw"])]  # once, however often it comes
    held = store.query("SELECT raw FROM records WHERE terminal = ? AND seq = 5", (TERMINAL.hex(),))
    assert [bytes(r[0]) for r in held] == [first["raw"]]
    store.close()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 3)), min_size=1, max_size=20))
def test_every_record_is_either_stored_or_kept_aside(tmp_path_factory, taps):
    store = Store(str(tmp_path_factory.mktemp("db") / "c.db"))
    sent = {}
    for seq, amount in taps:
        store.store([tap(seq, amount)])
        sent.setdefault(seq, set()).add(tap(seq, amount)["raw"])
    stored = {s: bytes(r) for s, r in store.query("SELECT seq, raw FROM records")}
    aside = {}
    for _, seq, raw in store.conflicts():
        aside.setdefault(seq, set()).add(raw)
    for seq, raws in sent.items():
        assert raws == {stored[seq]} | aside.get(seq, set())
        assert stored[seq] not in aside.get(seq, set())
    store.close()


def test_the_report_lists_the_conflicts(db, tmp_path):
    import csv
    import json
    import subprocess
    import sys

    from host_sim.tools import build

    store = Store(db)
    store.store([tap(9, 200)])
    store.store([tap(9, 500)])
    store.close()
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", db, "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["conflicts"] == 1
    with open(summary["conflicts_csv"]) as f:
        rows = list(csv.DictReader(f))
    kept = [(r["terminal"], r["seq"], r["record_hex"]) for r in rows]
    assert kept == [(TERMINAL.hex(), "9", tap(9, 500)["raw"].hex())]
