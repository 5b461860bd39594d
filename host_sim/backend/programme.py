"""The programme's report: what the county's payment programme reached, per period.

    python -m host_sim programme --db DB --out DIR [--period day|week|month] [--subsidy-budget-fen N]
                                 [--fee-rate-ppm N] [--promotions PROFILE.json]

Per period (China Standard Time days, ISO weeks or months): active users (distinct card tokens of accepted
taps), transactions and amounts, growth against the previous period, the UnionPay share of transactions
(a UnionPay AID, or a UnionPay payment code), merchant and terminal coverage (those with a transaction
against all known), the subsidy paid (report.py's rule, on approved transactions) against
--subsidy-budget-fen per period, random-discount spend against the programmes' daily budgets of the days
with discounts (promotions.py), complaints opened and resolved in the period with the median time to
resolve, and refunds.  Transactions and amounts are also broken down by credential kind, merchant and
route (the terminal's group).  Writes programme.csv, programme_breakdown.csv and programme.html (tables
and SVG plots).
"""

import datetime
import html
import json
import os

from host_sim import arguments
from host_sim.backend import cases, promotions, report
from host_sim.backend.store import Store
from protocol import paycode, record

CST = datetime.timezone(datetime.timedelta(hours=8))
KIND_NAMES = {record.KIND_QR_CPM: "qr_cpm", record.KIND_TICKET: "ticket", record.KIND_EMV_CONTACTLESS: "contactless",
              record.KIND_RIDE_CODE: "ride_code", record.KIND_PAYMENT_CODE: "payment_code",
              record.KIND_SCHOOL_PASS: "school_pass"}
COLUMNS = ("period", "active_users", "users_growth_pct", "transactions", "transactions_growth_pct", "amount_fen",
           "approved_fen", "unionpay_transactions", "unionpay_share_pct", "merchants_active", "merchants_total",
           "terminals_active", "terminals_total", "subsidy_fen", "subsidy_budget_fen", "discount_fen",
           "discount_budget_fen", "complaints_opened", "complaints_resolved", "median_resolve_s", "refunded_fen")
BREAKDOWN_COLUMNS = ("period", "by", "key", "transactions", "amount_fen")


def period_of(day, period):
    """The period name of a CST day "YYYY-MM-DD": the day, its ISO week "YYYY-Www" or its month "YYYY-MM"."""
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    year, week, _ = datetime.date.fromisoformat(day).isocalendar()
    return "%d-W%02d" % (year, week)


def _day(seconds):
    return datetime.datetime.fromtimestamp(seconds, CST).strftime("%Y-%m-%d")


def _iso_day(text):
    """The CST day of an ISO 8601 UTC time "YYYY-MM-DDTHH:MM:SSZ"."""
    when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return _day(when.timestamp())


def unionpay(rec):
    """A UnionPay transaction: a UnionPay AID (card or QR code) or a UnionPay payment code."""
    if rec["ext"].get(record.EXT_AID, b"").startswith(report.UNIONPAY_RID):
        return True
    code = rec["ext"].get(record.EXT_PAYCODE, b"")
    return rec["kind"] == record.KIND_PAYMENT_CODE and len(code) >= 2 and code[1] == paycode.UNIONPAY


def _growth(now, before):
    return None if not before else round(100.0 * (now - before) / before, 1)


def build(store, period="day", fee_ppm=report.DEFAULT_FEE_PPM, subsidy_budget_fen=None, programmes=None,
          offset=promotions.DEFAULT_UTC_OFFSET):
    """(rows with COLUMNS, one per period in order; breakdown rows with BREAKDOWN_COLUMNS)."""
    groups = {}
    breakdown = {}

    def group(name):
        g = groups.get(name)
        if g is None:
            g = groups[name] = dict.fromkeys(COLUMNS, 0)
            g.update(period=name, users=set(), merchants=set(), terminals=set(), resolve=[], subsidy_budget_fen=None,
                     discount_budget_fen=None, median_resolve_s=None)
        return g

    routes = {}
    for terminal, raw, approved, merchant in store.settlement_rows():
        rec = record.decode(raw)
        g = group(period_of(_day(rec["time"]), period))
        g["transactions"] += 1
        g["amount_fen"] += rec["amount"]
        g["approved_fen"] += rec["amount"] if approved else 0
        if rec["token"] != record.NO_TOKEN:
            g["users"].add(rec["token"])
        g["merchants"].add(merchant)
        g["terminals"].add(terminal)
        g["unionpay_transactions"] += unionpay(rec)
        if terminal not in routes:
            routes[terminal] = store.terminal_group(terminal) or "unassigned"
        for by, key in (("kind", KIND_NAMES.get(rec["kind"], str(rec["kind"]))), ("merchant", merchant),
                        ("route", routes[terminal])):
            b = breakdown.setdefault((g["period"], by, key), [0, 0])
            b[0] += 1
            b[1] += rec["amount"]
    for row in report.reconcile(store, fee_ppm):
        if row["subsidy_fen"]:
            group(period_of(row["day"], period))["subsidy_fen"] += row["subsidy_fen"]
        if row["refunded_fen"]:
            group(period_of(row["day"], period))["refunded_fen"] += row["refunded_fen"]
    for row in promotions.spend(store, programmes, offset):
        g = group(period_of(row["day"], period))
        g["discount_fen"] += row["discount_fen"]
        if row["programme_daily_fen"] is not None:
            g["discount_budget_fen"] = (g["discount_budget_fen"] or 0) + row["programme_daily_fen"]
    for case in cases.show(store):
        group(period_of(_iso_day(case["opened"]), period))["complaints_opened"] += 1
        if case["resolved"] is not None:
            g = group(period_of(_iso_day(case["resolved"]), period))
            g["complaints_resolved"] += 1
            g["resolve"].append(case["resolve_s"])
    known_terminals = {r["terminal"] for r in store.health_rows()}
    all_merchants, all_terminals = set(), set(known_terminals)
    for g in groups.values():
        all_merchants |= g["merchants"]
        all_terminals |= g["terminals"]
    out, previous = [], None
    for name in sorted(groups):
        g = groups[name]
        g["active_users"] = len(g.pop("users"))
        g["merchants_active"], g["merchants_total"] = len(g.pop("merchants")), len(all_merchants)
        g["terminals_active"], g["terminals_total"] = len(g.pop("terminals")), len(all_terminals)
        g["unionpay_share_pct"] = round(100.0 * g["unionpay_transactions"] / g["transactions"], 1) \
            if g["transactions"] else None
        g["subsidy_budget_fen"] = subsidy_budget_fen
        g["median_resolve_s"] = report.median_resolve_s([{"resolve_s": s} for s in g.pop("resolve")])
        if previous is not None:
            g["users_growth_pct"] = _growth(g["active_users"], previous["active_users"])
            g["transactions_growth_pct"] = _growth(g["transactions"], previous["transactions"])
        else:
            g["users_growth_pct"] = g["transactions_growth_pct"] = None
        out.append(g)
        previous = g
    rows = [{"period": p, "by": by, "key": key, "transactions": n, "amount_fen": fen}
            for (p, by, key), (n, fen) in sorted(breakdown.items())]
    return out, rows


def _bars(title, rows, key, colour, fmt=str):
    """A vertical bar chart of rows[key] per period as inline SVG."""
    values = [r[key] or 0 for r in rows]
    biggest = max(values + [1])
    bar, gap, height, top = 36, 12, 160, 46  # room above the tallest bar for its value, below the title
    width = max(max(1, len(rows)) * (bar + gap) + 60, 8 * len(title) + 20)  # the title is never cut off
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">'
             % (width, height + top + 40, html.escape(title)),
             '<text x="10" y="18" font-size="13">%s</text>' % html.escape(title)]
    for i, (r, v) in enumerate(zip(rows, values)):
        h = height * v / biggest
        x = 40 + i * (bar + gap)
        parts.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>' % (x, top + height - h, bar, h,
                                                                                   colour))
        parts.append('<text x="%d" y="%.1f" font-size="11" text-anchor="middle">%s</text>'
                     % (x + bar // 2, top + height - h - 4, html.escape(fmt(v))))
        parts.append('<text x="%d" y="%d" font-size="10" text-anchor="middle">%s</text>'
                     % (x + bar // 2, top + height + 14, html.escape(r["period"])))
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(rows, breakdown, path, period):
    def cells(values, tag="td"):
        return "".join("<%s>%s</%s>" % (tag, html.escape("" if v is None else str(v)), tag) for v in values)

    body = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Programme report</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
            "th{background:#eee}svg{margin:0 1em 1em 0}</style></head><body>",
            "<h1>Programme report (per %s)</h1>" % html.escape(period),
            "<p>Active users are distinct card tokens of accepted taps; amounts in fen; days in China Standard "
            "Time. Growth is against the previous period; UnionPay share is of transactions.</p>",
            _bars("transactions", rows, "transactions", "#2f5d8a"),
            _bars("active users", rows, "active_users", "#2f7d32"),
            _bars("UnionPay share (%)", rows, "unionpay_share_pct", "#b8442f"),
            _bars("subsidy paid (fen)", rows, "subsidy_fen", "#7aa6d8"),
            "<h2>Per period</h2><table id='programme'><tr>%s</tr>" % cells(COLUMNS, "th")]
    for r in rows:
        body.append("<tr>%s</tr>" % cells([r[k] for k in COLUMNS]))
    body.append("</table><h2>By credential kind, merchant and route</h2>")
    body.append("<table id='breakdown'><tr>%s</tr>" % cells(BREAKDOWN_COLUMNS, "th"))
    for r in breakdown:
        body.append("<tr>%s</tr>" % cells([r[k] for k in BREAKDOWN_COLUMNS]))
    body.append("</table></body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(body))


def main(args):
    _, offset, programmes = args.promotions or promotions.NONE
    store = Store(args.db)
    try:
        rows, breakdown = build(store, args.period, args.fee_rate_ppm, args.subsidy_budget_fen, programmes, offset)
    finally:
        store.close()
    os.makedirs(args.out, exist_ok=True)
    report.write_csv(rows, os.path.join(args.out, "programme.csv"), COLUMNS)
    report.write_csv(breakdown, os.path.join(args.out, "programme_breakdown.csv"), BREAKDOWN_COLUMNS)
    write_html(rows, breakdown, os.path.join(args.out, "programme.html"), args.period)
    print(json.dumps({"periods": len(rows), "transactions": sum(r["transactions"] for r in rows),
                      "refunded_fen": sum(r["refunded_fen"] for r in rows),
                      "complaints_opened": sum(r["complaints_opened"] for r in rows),
                      "csv": os.path.join(args.out, "programme.csv"),
                      "breakdown_csv": os.path.join(args.out, "programme_breakdown.csv"),
                      "html": os.path.join(args.out, "programme.html")}))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, type=arguments.existing_database,
                        help="the collector's database (SQLite file or postgresql:// URL)")
    parser.add_argument("--out", default="reports", help="directory for programme.csv and programme.html")
    parser.add_argument("--period", choices=("day", "week", "month"), default="month", help="the reporting period")
    parser.add_argument("--subsidy-budget-fen", type=int, metavar="N", help="the subsidy budget of one period")
    parser.add_argument("--fee-rate-ppm", type=int, default=report.DEFAULT_FEE_PPM, help="acquiring fee (ppm)")
    parser.add_argument("--promotions", metavar="PROFILE.json", type=promotions.option,
                        help="the programmes whose budgets apply")
