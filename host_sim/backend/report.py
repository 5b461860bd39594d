"""Settlement and reconciliation per merchant, terminal and day, with the programme's subsidy rule.

The county programme refunds the acquiring fee in full and adds a 0.2 % subsidy for UnionPay QR
payments below 500 yuan.  Amounts are integer fen throughout; each transaction's fee and subsidy is
rounded half up to the fen, so the report adds up exactly.  Days are China Standard Time (UTC+8).
Only transactions the acquirer approved settle; declined and not yet authorised ones are listed.

    python -m host_sim report --db collector.db --out reports/ [--fee-rate-ppm 3800]
writes reconciliation.csv and reconciliation.html (a table and an SVG chart of subsidy per merchant).
"""

import csv
import html
import json
import os
import time

from host_sim.backend.store import Store
from protocol import record

UNIONPAY_RID = bytes.fromhex("A000000333")
SUBSIDY_LIMIT_FEN = 50000  # payments below 500 yuan
SUBSIDY_PPM = 2000  # 0.2 %
DEFAULT_FEE_PPM = 3800  # 0.38 %, a common acquiring rate for QR payments
CST = 8 * 3600

COLUMNS = ("merchant", "terminal", "day", "transactions", "gross_fen", "approved", "approved_fen", "declined",
           "declined_fen", "pending", "pending_fen", "fee_fen", "fee_refund_fen", "subsidy_fen",
           "net_settlement_fen")

def ppm_of(amount, ppm):
    """amount * ppm / 1e6 rounded half up, in integer arithmetic."""
    return (amount * ppm + 500000) // 1000000


def subsidy_eligible(rec):
    """A UnionPay QR payment (CPM with a UnionPay AID) below the programme's limit."""
    aid = rec["ext"].get(record.EXT_AID, b"")
    return rec["kind"] == record.KIND_QR_CPM and aid.startswith(UNIONPAY_RID) and rec["amount"] < SUBSIDY_LIMIT_FEN


def reconcile(store, fee_ppm=DEFAULT_FEE_PPM):
    """Rows (dicts with COLUMNS) per merchant, terminal and day, sorted; `store` is host_sim.backend.store.Store."""
    groups = {}
    for terminal, raw, approved, merchant in store.settlement_rows():
        rec = record.decode(raw)
        day = time.strftime("%Y-%m-%d", time.gmtime(rec["time"] + CST))
        g = groups.get((merchant, terminal, day))
        if g is None:
            g = groups[(merchant, terminal, day)] = dict.fromkeys(COLUMNS, 0)
            g.update(merchant=merchant, terminal=terminal, day=day)
        amount = rec["amount"]
        g["transactions"] += 1
        g["gross_fen"] += amount
        if approved is None:
            g["pending"] += 1
            g["pending_fen"] += amount
        elif not approved:
            g["declined"] += 1
            g["declined_fen"] += amount
        else:
            fee = ppm_of(amount, fee_ppm)
            g["approved"] += 1
            g["approved_fen"] += amount
            g["fee_fen"] += fee
            if subsidy_eligible(rec):
                g["fee_refund_fen"] += fee
                g["subsidy_fen"] += ppm_of(amount, SUBSIDY_PPM)
    out = []
    for key in sorted(groups):
        g = groups[key]
        g["net_settlement_fen"] = g["approved_fen"] - g["fee_fen"] + g["fee_refund_fen"] + g["subsidy_fen"]
        out.append(g)
    return out


def per_merchant(rows):
    totals = {}
    for r in rows:
        t = totals.setdefault(r["merchant"], dict.fromkeys(COLUMNS[3:], 0))
        for k in COLUMNS[3:]:
            t[k] += r[k]
    return totals


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def _yuan(fen):
    return "%d.%02d" % divmod(fen, 100) if fen >= 0 else "-" + _yuan(-fen)


def _chart(totals):
    """Horizontal bars: subsidy and fee refund per merchant, as inline SVG (no plotting library)."""
    names = sorted(totals)
    biggest = max([totals[n]["subsidy_fen"] + totals[n]["fee_refund_fen"] for n in names] + [1])
    bar_h, gap, left, width = 22, 10, 180, 460
    height = len(names) * (bar_h + gap) + 40
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
             'aria-label="subsidy per merchant">' % (left + width + 120, height)]
    for i, name in enumerate(names):
        y = 10 + i * (bar_h + gap)
        refund = totals[name]["fee_refund_fen"]
        subsidy = totals[name]["subsidy_fen"]
        w_refund = width * refund / biggest
        w_subsidy = width * subsidy / biggest
        parts.append('<text x="%d" y="%d" text-anchor="end" font-size="13">%s</text>'
                     % (left - 8, y + 16, html.escape(name)))
        parts.append('<rect class="refund" x="%d" y="%d" width="%.1f" height="%d" fill="#7aa6d8"/>'
                     % (left, y, w_refund, bar_h))
        parts.append('<rect class="subsidy" x="%.1f" y="%d" width="%.1f" height="%d" fill="#2f7d32"/>'
                     % (left + w_refund, y, w_subsidy, bar_h))
        parts.append('<text x="%.1f" y="%d" font-size="12">¥%s</text>'
                     % (left + w_refund + w_subsidy + 6, y + 16, _yuan(refund + subsidy)))
    parts.append('<text x="%d" y="%d" font-size="12"><tspan fill="#7aa6d8">■</tspan> fee refunded '
                 '<tspan fill="#2f7d32">■</tspan> 0.2 %% subsidy</text>' % (left, height - 8))
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(rows, path, fee_ppm):
    totals = per_merchant(rows)
    money = {"gross_fen", "approved_fen", "declined_fen", "pending_fen", "fee_fen", "fee_refund_fen",
             "subsidy_fen", "net_settlement_fen"}

    def cells(values, tag="td"):
        return "".join("<%s>%s</%s>" % (tag, html.escape(str(v)), tag) for v in values)

    def label(keys):
        return [k[:-4] + " (¥)" if k in money else k for k in keys]

    def show(r, keys):
        return [(_yuan(r[k]) if k in money else r[k]) for k in keys]

    body = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Reconciliation</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
            "th{background:#eee}</style></head><body>",
            "<h1>Settlement and reconciliation</h1>",
            "<p>Acquiring fee %.2f %%. UnionPay QR payments below ¥500: fee refunded in full plus a 0.2 %% "
            "subsidy. Amounts in yuan; days in China Standard Time.</p>" % (fee_ppm / 10000),
            "<h2>Subsidy per merchant</h2>", _chart(totals),
            "<h2>Per merchant</h2><table id='merchants'><tr>%s</tr>" % cells(["merchant"] + label(COLUMNS[3:]), "th")]
    for name in sorted(totals):
        body.append("<tr>%s</tr>" % cells([name] + show(totals[name], COLUMNS[3:])))
    body.append("</table><h2>Per merchant, terminal and day</h2>")
    body.append("<table id='detail'><tr>%s</tr>" % cells(label(COLUMNS), "th"))
    for r in rows:
        body.append("<tr>%s</tr>" % cells(show(r, COLUMNS)))
    body.append("</table></body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(body))


def main(args):
    store = Store(args.db)
    try:
        for assignment in args.merchant or ():
            terminal, _, merchant = assignment.partition("=")
            store.assign_merchant(terminal, merchant)
        rows = reconcile(store, args.fee_rate_ppm)
    finally:
        store.close()
    os.makedirs(args.out, exist_ok=True)
    write_csv(rows, os.path.join(args.out, "reconciliation.csv"))
    write_html(rows, os.path.join(args.out, "reconciliation.html"), args.fee_rate_ppm)
    totals = per_merchant(rows)
    print(json.dumps({"rows": len(rows), "merchants": len(totals),
                      "subsidy_fen": sum(t["subsidy_fen"] for t in totals.values()),
                      "fee_refund_fen": sum(t["fee_refund_fen"] for t in totals.values()),
                      "csv": os.path.join(args.out, "reconciliation.csv"),
                      "html": os.path.join(args.out, "reconciliation.html")}))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--out", default="reports", help="directory for reconciliation.csv and .html")
    parser.add_argument("--fee-rate-ppm", type=int, default=DEFAULT_FEE_PPM, help="acquiring fee, parts per million")
    parser.add_argument("--merchant", action="append", metavar="TERMINAL=NAME",
                        help="assign a terminal (hex id) to a merchant (repeatable, remembered)")
