"""Deferred authorisation, the deny list, and reconciliation with the programme's subsidy rule."""

import csv
import subprocess
import sys
from html.parser import HTMLParser

from host_sim.backend import acquirer, report
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import record

UNIONPAY = bytes.fromhex("A000000333010101")
VISA = bytes.fromhex("A0000000031010")
T1 = b"T1\x00\x00\x00\x00\x00\x01"
T2 = b"T2\x00\x00\x00\x00\x00\x02"
DAY1 = 1_796_000_000  # some time on one CST day


def rec(terminal, seq, amount, token, aid=UNIONPAY, when=DAY1, kind=record.KIND_QR_CPM):
    raw = record.encode(terminal, seq, when, kind, amount, 156, record.ACCEPTED, 0, 1, token,
                        [(record.EXT_ATC, seq.to_bytes(2, "big")), (record.EXT_AID, aid)])
    d = record.decode(raw)
    d["raw"] = raw
    return d


def make_store(tmp_path, recs):
    path = str(tmp_path / "c.db")
    store = Store(path)
    store.store(recs)
    return store


def test_declines_join_the_deny_list_once_and_decisions_are_idempotent(tmp_path):
    bad, good = bytes([1]) * 16, bytes([2]) * 16
    store = make_store(tmp_path, [rec(T1, 1, 200, bad), rec(T1, 2, 200, good), rec(T1, 3, 200, bad)])
    acq = acquirer.Acquirer({"decline_tokens": [bad.hex()]})
    assert acquirer.authorise_pending(store, acq) == (1, 2, 1)
    assert store.deny_list_since(0) == [(bad, 1)]
    assert store.deny_list_since(1) == []
    assert acquirer.authorise_pending(store, acq) == (0, 0, 1)  # nothing decided twice


def test_random_declines_are_deterministic_per_seed():
    a = acquirer.Acquirer({"decline_rate": 0.3, "seed": 7})
    b = acquirer.Acquirer({"decline_rate": 0.3, "seed": 7})
    outcomes = [a.decide("t", i, b"x" * 16, 100)[0] for i in range(400)]
    assert outcomes == [b.decide("t", i, b"x" * 16, 100)[0] for i in range(400)]
    assert 80 < outcomes.count(False) < 160  # about 30 % of 400
    assert acquirer.Acquirer({"max_amount": 500}).decide("t", 1, b"x" * 16, 501) == (False, "over limit")


def test_subsidy_rule_applies_to_unionpay_qr_below_500_yuan_only(tmp_path):
    tok = bytes(16)
    recs = [
        rec(T1, 1, 200, tok),                      # UnionPay QR, 2 yuan: fee refunded + 0.2 %
        rec(T1, 2, 49999, tok),                    # just below the limit: eligible
        rec(T1, 3, 50000, tok),                    # at the limit: not eligible
        rec(T1, 4, 10000, tok, aid=VISA),          # not UnionPay
        rec(T1, 5, 10000, tok, kind=record.KIND_EMV_CONTACTLESS),  # not a QR payment
    ]
    store = make_store(tmp_path, recs)
    acquirer.authorise_pending(store, acquirer.Acquirer())
    (row,) = report.reconcile(store, fee_ppm=3800)
    fees = [1, 190, 190, 38, 38]  # 0.38 % rounded half up: 0.76 -> 1, 189.996 -> 190, 190, 38, 38
    assert row["fee_fen"] == sum(fees)
    assert row["fee_refund_fen"] == 1 + 190
    assert row["subsidy_fen"] == 0 + 100  # 0.2 %: 0.4 -> 0, 99.998 -> 100
    assert row["approved_fen"] == 200 + 49999 + 50000 + 10000 + 10000
    assert row["net_settlement_fen"] == row["approved_fen"] - sum(fees) + 191 + 100


def test_report_groups_by_merchant_terminal_and_cst_day_and_writes_csv_html(tmp_path):
    tok = bytes(16)
    # 15:59:59 UTC and 16:00:00 UTC fall on different China Standard Time days.
    late = 1_796_083_199 - (1_796_083_199 % 86400) + 57599
    recs = [rec(T1, 1, 300, tok, when=late), rec(T1, 2, 300, tok, when=late + 1), rec(T2, 1, 500, tok)]
    store = make_store(tmp_path, recs)
    acquirer.authorise_pending(store, acquirer.Acquirer({"decline_tokens": []}))
    store.assign_merchant(T1.hex(), "Yiyuan Bus <Line 1>")
    rows = report.reconcile(store)
    assert [(r["merchant"], r["day"], r["transactions"]) for r in rows] == [
        ("Yiyuan Bus <Line 1>", rows[0]["day"], 1), ("Yiyuan Bus <Line 1>", rows[1]["day"], 1),
        ("unassigned", rows[2]["day"], 1)]
    assert rows[0]["day"] != rows[1]["day"]
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"),
                           "--out", str(out)], capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with open(out / "reconciliation.csv") as f:
        table = list(csv.DictReader(f))
    assert sum(int(r["subsidy_fen"]) for r in table) == sum(r["subsidy_fen"] for r in rows)

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.text, self.rects = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "rect":
                self.rects.append(dict(attrs))

        def handle_data(self, data):
            self.text.append(data)

    page = Collect()
    page.feed((out / "reconciliation.html").read_text())
    text = " ".join(page.text)
    assert "Yiyuan Bus <Line 1>" in text  # escaped in the page, readable as text
    assert "Subsidy per merchant" in text
    assert sum(1 for r in page.rects if r.get("class") == "subsidy") == 2  # one bar per merchant


def test_pending_and_declined_do_not_settle(tmp_path):
    bad = bytes([9]) * 16
    store = make_store(tmp_path, [rec(T1, 1, 1000, bad), rec(T1, 2, 1000, bytes(16))])
    (row,) = report.reconcile(store)
    assert (row["pending"], row["net_settlement_fen"]) == (2, 0)
    acquirer.authorise_pending(store, acquirer.Acquirer({"decline_tokens": [bad.hex()]}))
    (row,) = report.reconcile(store)
    assert (row["declined"], row["approved"], row["approved_fen"]) == (1, 1, 1000)
