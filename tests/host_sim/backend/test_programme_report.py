"""The programme's report per period: users, transactions, growth, UnionPay share, coverage, subsidy and
refunds, complaints; CSV and HTML with plots."""

import csv
import subprocess
import sys

from host_sim.backend import acquirer, acquirer_host, acquirer_link, cases, programme
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import record

UNIONPAY = bytes.fromhex("A000000333010101")
VISA = bytes.fromhex("A0000000031010")
T1 = bytes.fromhex("a100000000000001")
T2 = bytes.fromhex("a200000000000002")
DAY1 = 1_796_000_000  # 2026-11-30 CST
DAY2 = DAY1 + 86400


def tap(terminal, seq, when, token, aid=UNIONPAY, amount=200):
    raw = record.encode(terminal, seq, when, record.KIND_QR_CPM, amount, 156, record.ACCEPTED, 0, 1, token,
                        [(record.EXT_AID, aid)])
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def filled(db):
    store = Store(db)
    store.register(T2.hex(), b"k" * 16)
    store.store([tap(T1, 1, DAY1, b"\x01" * 16), tap(T1, 2, DAY1 + 60, b"\x02" * 16, VISA),
                 tap(T1, 3, DAY2, b"\x01" * 16), tap(T1, 4, DAY2 + 60, b"\x03" * 16),
                 tap(T1, 5, DAY2 + 120, b"\x03" * 16, VISA), tap(T1, 6, DAY2 + 180, b"\x04" * 16)])
    store.assign_merchant(T1.hex(), "village bus")
    store.assign_group(T1.hex(), "route 7")
    acquirer.authorise_pending(store, acquirer.Acquirer())
    return store


def test_periods_count_users_growth_share_coverage_and_a_refund(db):
    store = filled(db)
    case = cases.open_case(store, "charged twice", ref="%s:4" % T1.hex())
    cases.refund(store, case, 120, acquirer_link.LocalLink(acquirer_host.AcquirerHost(acquirer.Acquirer())))
    rows, breakdown = programme.build(store, "day", subsidy_budget_fen=1000)
    first, second = rows[0], rows[1]
    assert (first["period"], second["period"]) == ("2026-11-30", "2026-12-01")
    assert (first["active_users"], first["transactions"], first["amount_fen"]) == (2, 2, 400)
    assert (second["active_users"], second["transactions"]) == (3, 4)
    assert (second["users_growth_pct"], second["transactions_growth_pct"]) == (50.0, 100.0)
    assert (first["unionpay_share_pct"], second["unionpay_share_pct"]) == (50.0, 75.0)
    assert (first["terminals_active"], first["terminals_total"]) == (1, 2)  # T2 is known but took nothing
    assert (first["merchants_active"], first["merchants_total"]) == (1, 1)
    assert second["subsidy_fen"] == 1 and second["subsidy_budget_fen"] == 1000  # 600 fen eligible x 0.2 %
    assert second["refunded_fen"] == 120 and first["refunded_fen"] == 0
    opened = [r for r in rows if r["complaints_opened"]]
    assert len(opened) == 1 and opened[0]["complaints_resolved"] == 1 and opened[0]["median_resolve_s"] >= 0
    assert {(r["by"], r["key"]) for r in breakdown} == {("kind", "qr_cpm"), ("merchant", "village bus"),
                                                       ("route", "route 7")}
    assert programme.build(store, "month")[0][0]["period"] == "2026-11"
    assert programme.build(store, "week")[0][0]["period"] == "2026-W49"
    store.close()


def test_programme_command_writes_csv_and_a_page_with_plots(tmp_path):
    db = str(tmp_path / "c.db")
    filled(db).close()
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "host_sim", "programme", "--db", db, "--out", str(out), "--period",
                          "day"], capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    with open(out / "programme.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["transactions"] for r in rows] == ["2", "4"]
    page = (out / "programme.html").read_text()
    assert page.count("<svg") == 4 and "id='programme'" in page and "id='breakdown'" in page
