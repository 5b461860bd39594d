"""Deferred authorisation, the deny list, and reconciliation with the programme's subsidy rule."""

import csv
import subprocess
import sys
from html.parser import HTMLParser

from host_sim.backend import acquirer, report
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import record

OLD_COLUMNS = ("merchant", "terminal", "day", "transactions", "gross_fen", "approved", "approved_fen", "declined",
               "declined_fen", "pending", "pending_fen", "fee_fen", "fee_refund_fen", "subsidy_fen",
               "net_settlement_fen")
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


def declined(terminal, seq, reason, token=record.NO_TOKEN, kind=record.KIND_UNKNOWN, when=DAY1, repeats=0):
    """A declined tap as the terminal journals it (firmware/declines.py): amount 0, no card data."""
    ext = [(record.EXT_REPEATS, repeats.to_bytes(2, "little"))] if repeats else []
    raw = record.encode(terminal, seq, when, kind, 0, 156, record.DECLINED, reason, 0, token, ext)
    d = record.decode(raw)
    d["raw"] = raw
    return d


def make_store(tmp_path, recs):
    path = str(tmp_path / "c.db")
    store = Store(path)
    store.store(recs)
    return store


def run_report(tmp_path):
    """`python -m host_sim report` over tmp_path/c.db, as an operator runs it; its output directory."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"),
                           "--out", str(out)], capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


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
    # On the day's exact sums, rounded half up once: approved 120199 fen, eligible 200 + 49999 = 50199 fen.
    assert row["approved_fen"] == 200 + 49999 + 50000 + 10000 + 10000 == 120199
    assert row["eligible_fen"] == 50199
    assert row["fee_fen"] == 457  # 0.38 % of 120199 = 456.7562
    assert row["fee_refund_fen"] == 191  # 0.38 % of 50199 = 190.7562
    assert row["subsidy_fen"] == 100  # 0.2 % of 50199 = 100.398
    assert row["net_settlement_fen"] == 120199 - 457 + 191 + 100


def test_a_day_of_2_yuan_fares_earns_the_exact_subsidy_and_fee(tmp_path):
    """100 fares of 200 fen: 0.2 % of 20000 fen is 40 fen (rounding each 0.4 fen gave 0 before) and the
    fee is 0.38 % of the sum, 76 fen, refunded in full."""
    store = make_store(tmp_path, [rec(T1, seq, 200, bytes([seq]) * 16) for seq in range(1, 101)])
    acquirer.authorise_pending(store, acquirer.Acquirer())
    (row,) = report.reconcile(store, fee_ppm=3800)
    assert (row["approved"], row["approved_fen"], row["eligible_fen"]) == (100, 20000, 20000)
    assert (row["subsidy_fen"], row["fee_fen"], row["fee_refund_fen"]) == (40, 76, 76)
    assert row["net_settlement_fen"] == 20040
    # Rounded once per row: one more fare of 200 fen gives 40.4 -> 40 fen subsidy and 76.76 -> 77 fen fee.
    store.store([rec(T1, 101, 200, bytes(16))])
    acquirer.authorise_pending(store, acquirer.Acquirer())
    (row,) = report.reconcile(store, fee_ppm=3800)
    assert (row["subsidy_fen"], row["fee_fen"], row["fee_refund_fen"]) == (40, 77, 77)


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
    out = run_report(tmp_path)
    table = read_csv(out / "reconciliation.csv")
    assert sum(int(r["subsidy_fen"]) for r in table) == sum(r["subsidy_fen"] for r in rows)
    assert list(table[0])[:len(OLD_COLUMNS)] == list(OLD_COLUMNS)  # columns only added, none renamed

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
    assert "rounded half up to the fen once" in text  # the rule is written in the report
    assert sum(1 for r in page.rects if r.get("class") == "subsidy") == 2  # one bar per merchant


def test_pending_and_declined_do_not_settle(tmp_path):
    bad = bytes([9]) * 16
    store = make_store(tmp_path, [rec(T1, 1, 1000, bad), rec(T1, 2, 1000, bytes(16))])
    (row,) = report.reconcile(store)
    assert (row["pending"], row["net_settlement_fen"]) == (2, 0)
    acquirer.authorise_pending(store, acquirer.Acquirer({"decline_tokens": [bad.hex()]}))
    (row,) = report.reconcile(store)
    assert (row["declined"], row["approved"], row["approved_fen"]) == (1, 1, 1000)


def test_declined_taps_are_never_authorised_and_are_counted_per_reason(tmp_path):
    blocked = bytes([7]) * 16
    recs = [rec(T1, 1, 200, bytes(16)),
            declined(T1, 2, record.REASON_UNKNOWN_FORMAT, repeats=4),  # itself and 4 coalesced: 5 taps
            declined(T1, 3, record.REASON_DENY_LISTED, blocked, record.KIND_QR_CPM),
            declined(T1, 4, record.REASON_DENY_LISTED, blocked, record.KIND_QR_CPM),
            declined(T2, 1, record.REASON_CARD_READ, kind=record.KIND_EMV_CONTACTLESS)]
    store = make_store(tmp_path, recs)
    store.assign_merchant(T1.hex(), "Line 1")
    assert [r[:2] for r in store.pending_records()] == [(T1.hex(), 1)]
    assert acquirer.authorise_pending(store, acquirer.Acquirer()) == (1, 0, 0)
    assert store.query("SELECT seq FROM authorisations") == [(1,)]
    rows = report.reconcile(store)
    assert [(r["merchant"], r["transactions"], r["declined_taps"], r["approved_fen"]) for r in rows] == [
        ("Line 1", 1, 7, 200), ("unassigned", 0, 1, 0)]
    got = [(r["merchant"], r["reason_text"], r["taps"], r["records"]) for r in report.declines(store)]
    assert got == [("Line 1", "unknown code", 5, 1), ("Line 1", "card blocked", 2, 2),
                   ("unassigned", "card read failed", 1, 1)]
    out = run_report(tmp_path)
    table = read_csv(out / "declines.csv")
    assert [(r["terminal"], r["reason"], r["reason_text"], r["taps"]) for r in table] == [
        (T1.hex(), str(record.REASON_UNKNOWN_FORMAT), "unknown code", "5"),
        (T1.hex(), str(record.REASON_DENY_LISTED), "card blocked", "2"),
        (T2.hex(), str(record.REASON_CARD_READ), "card read failed", "1")]
    page = (out / "reconciliation.html").read_text()
    assert "Declined taps per reason" in page and "<td>card blocked</td><td>2</td>" in page


def test_records_that_are_no_taps_are_neither_authorised_nor_settled(tmp_path):
    """Record kinds outside record.TAP_KINDS (key or config records) are no transactions."""
    other = rec(T1, 2, 200, bytes(16), kind=9)
    store = make_store(tmp_path, [rec(T1, 1, 200, bytes(16)), other])
    assert [r[1] for r in store.pending_records()] == [1]
    acquirer.authorise_pending(store, acquirer.Acquirer())
    (row,) = report.reconcile(store)
    assert (row["transactions"], row["approved_fen"]) == (1, 200)


def test_ride_codes_are_taps_approved_without_the_acquirer_and_settle(tmp_path):
    """A ride code is verified offline and billed by the ride-code platform: the acquirer pass approves it
    without a message to the acquirer, and the report counts it like any paid tap; a refused one is a
    declined tap in declines.csv."""

    class NoLink:
        def exchange(self, message):
            raise AssertionError("a ride code went to the acquirer")

    store = make_store(tmp_path, [rec(T1, 1, 200, b"R" * 16, kind=record.KIND_RIDE_CODE),
                                  declined(T1, 2, record.REASON_RIDE_ALREADY_USED, b"R" * 16,
                                           kind=record.KIND_RIDE_CODE)])
    result = acquirer.run_pass(store, NoLink())
    assert (result.approved, result.declined, result.error) == (1, 0, None)
    assert store.pending_records() == []
    store.close()
    out = run_report(tmp_path)
    rows = list(csv.DictReader(open(out / "declines.csv")))
    assert [(r["reason_text"], r["taps"]) for r in rows] == [("already used", "1")]
    recon = list(csv.DictReader(open(out / "reconciliation.csv")))
    assert sum(int(r["approved_fen"]) for r in recon) == 200
