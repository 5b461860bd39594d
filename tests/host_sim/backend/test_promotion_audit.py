"""The host's side of the county's promotions: `report --promotions PROFILE.json` counts the discounts per
programme and day against its budgets and recomputes every draw from the record and the terminal's device
key, flagging a discount the draw did not grant (a forged draw, a discount larger than the programme's,
a record of a terminal whose key differs)."""

import csv
import json
import subprocess
import sys

from host_sim.backend import promotions
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import promotion, record

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
A = bytes.fromhex("5642000001000000")
B = bytes.fromhex("5642000002000000")
DAY1 = 1796600000  # 2026-12-07 in UTC+8
PROGRAMME = {"id": 3, "kinds": ["qr_cpm"], "chance_ppm": 1000000, "discount_fen": 50, "terminal_daily_fen": 100,
             "programme_daily_fen": 120, "from": "2026-12-01", "until": "2026-12-31"}
PROFILE = {"profile": "bus", "group": "route-7", "promotions": [PROGRAMME]}


def discounted(terminal, key, seq, discount=50, when=DAY1, fare=200, value=None):
    """An accepted CPM record with a promotion's discount, drawn as the terminal draws it (unless `value`)."""
    token = bytes([seq]) * 16
    if value is None:
        value = promotion.draw(promotion.key_of(key), 3, terminal, seq, when, record.KIND_QR_CPM, fare, token)
    raw = record.encode(terminal, seq, when, record.KIND_QR_CPM, fare - discount, 156, record.ACCEPTED, 0, 1, token,
                        promotion.extensions(3, discount, value))
    d = record.decode(raw)
    d["raw"] = raw
    return d


def make_store(tmp_path):
    store = Store(str(tmp_path / "c.db"))
    store.register(A.hex(), KEY_A)
    store.register(B.hex(), KEY_B)
    plain = record.decode(record.encode(A, 9, DAY1, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                                        bytes(16)))
    plain["raw"] = record.encode(A, 9, DAY1, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1, bytes(16))
    store.store([discounted(A, KEY_A, 1), discounted(A, KEY_A, 2), plain,
                 discounted(B, KEY_B, 1),
                 discounted(B, KEY_B, 2, value=7),  # a draw the terminal did not make
                 discounted(B, KEY_B, 3, discount=80),  # drawn over the fare, but 80 is not the programme's 50
                 discounted(B, KEY_A, 4),  # drawn under another terminal's key
                 discounted(A, KEY_A, 3, when=DAY1 + 86400)])
    return store


def test_the_audit_recomputes_every_draw_and_flags_what_it_did_not_grant(tmp_path):
    store = make_store(tmp_path)
    programmes = {3: promotion.programmes([PROGRAMME])[0]}
    rows = promotions.audit(store, programmes, "bus")
    verdicts = {(r["terminal"], r["seq"]): r["verdict"] for r in rows}
    assert verdicts == {(A.hex(), 1): "ok", (A.hex(), 2): "ok", (A.hex(), 3): "ok", (B.hex(), 1): "ok",
                        (B.hex(), 2): "draw does not match the record",
                        (B.hex(), 3): "discount 80 is not the programme's 50",
                        (B.hex(), 4): "draw does not match the record"}
    assert len(promotions.flagged(rows)) == 3
    bus_only = {3: promotion.programmes([dict(PROGRAMME, profiles=["bus"])])[0]}
    assert promotions.audit(store, bus_only, "scenic")[0]["verdict"] == "programme does not apply to this tap"
    no_rules = {(r["terminal"], r["seq"]): r["verdict"] for r in promotions.audit(store)}
    assert no_rules[(A.hex(), 1)] == "ok (draw only)" and no_rules[(B.hex(), 3)] == "ok (draw only)"
    assert no_rules[(B.hex(), 2)] == "draw does not match the record"
    store.close()


def test_spend_per_programme_and_day_against_its_budgets(tmp_path):
    store = make_store(tmp_path)
    programmes = {3: promotion.programmes([PROGRAMME])[0]}
    rows = promotions.spend(store, programmes)
    assert [(r["day"], r["terminals"], r["discounts"], r["discount_fen"], r["max_terminal_fen"],
             r["over_programme_budget"], r["over_terminal_budget"]) for r in rows] == [
        ("2026-12-07", 2, 6, 330, 230, 1, 1),  # A 100, B 50 + 50 + 80 + 50: both budgets overspent
        ("2026-12-08", 1, 1, 50, 50, 0, 0)]
    store.close()


def test_report_writes_the_promotion_tables_and_counts_flagged_discounts(tmp_path):
    make_store(tmp_path).close()
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(json.dumps(PROFILE))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"), "--out",
                           str(out), "--promotions", str(profile_path)], capture_output=True, text=True,
                          cwd=build.ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["promotion_discounts"], summary["promotion_discount_fen"], summary["promotion_flagged"]) == \
        (7, 380, 3)
    with open(out / "promotion_audit.csv") as f:
        audit = list(csv.DictReader(f))
    assert [r["verdict"] for r in audit if r["terminal"] == B.hex()][1] == "draw does not match the record"
    with open(out / "promotions.csv") as f:
        assert [r["discount_fen"] for r in csv.DictReader(f)] == ["330", "50"]
    page = (out / "reconciliation.html").read_text(encoding="utf-8")
    assert "id='promotions'" in page and "discount 80 is not the programme&#x27;s 50" in page


def test_a_bad_promotions_file_is_one_clear_line(tmp_path):
    make_store(tmp_path).close()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([dict(PROGRAMME, kinds=["contactless"])]))
    proc = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"), "--out",
                           str(tmp_path / "out"), "--promotions", str(bad)], capture_output=True, text=True,
                          cwd=build.ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "kind 'contactless' is not eligible" in proc.stderr
