"""Settlement and reconciliation per merchant, terminal and day, with the programme's subsidy rule.

The county programme refunds the acquiring fee in full and adds a 0.2 % subsidy for UnionPay QR
payments below 500 yuan.  Amounts are integer fen; fee, fee refund and subsidy are computed on each
row's exact sums and rounded once (RULE), so a day of 2-yuan fares earns its subsidy and the report
adds up exactly.  Days are China Standard Time (UTC+8).  Only transactions the acquirer approved
settle; declined and not yet authorised ones are listed.  Taps the terminals declined are no
transactions: they are counted per reason (each declined record stands for itself plus the identical
declines coalesced into it, record.EXT_REPEATS).

    python -m host_sim report --db collector.db --out reports/ [--fee-rate-ppm 3800] [--promotions PROFILE.json]
writes reconciliation.csv, declines.csv and reconciliation.html (tables and an SVG chart of subsidy
per merchant), guardian.csv: one row per school-bus boarding whose record asks for a guardian
notice (record.EXT_GUARDIAN), for the school's notification service, and for the county's promotions
promotions.csv (discount spend per programme and day against its budgets) and promotion_audit.csv (every
discount's draw recomputed; host_sim/backend/promotions.py).
"""

import csv
import html
import json
import os
import struct
import time

from host_sim import arguments
from host_sim.backend import monitor, promotions
from host_sim.backend.store import REFUSED_NAMES, Store
from protocol import record

UNIONPAY_RID = bytes.fromhex("A000000333")
SUBSIDY_LIMIT_FEN = 50000  # payments below 500 yuan
SUBSIDY_PPM = 2000  # 0.2 %
DEFAULT_FEE_PPM = 3800  # 0.38 %, a common acquiring rate for QR payments
CST = 8 * 3600

COLUMNS = ("merchant", "terminal", "day", "transactions", "gross_fen", "approved", "approved_fen", "declined",
           "declined_fen", "pending", "pending_fen", "fee_fen", "fee_refund_fen", "subsidy_fen",
           "net_settlement_fen", "eligible_fen", "declined_taps", "refunded", "refunded_fen")
DECLINE_COLUMNS = ("merchant", "terminal", "day", "reason", "reason_text", "taps", "records")
CONFLICT_COLUMNS = ("terminal", "seq", "record_hex")
REFUSED_COLUMNS = ("terminal", "seq", "reason", "detail", "notified", "record_hex")
JUMP_COLUMNS = ("terminal", "seq", "time", "first", "last")
ONLINE_COLUMNS = ("terminal", "request_id", "family", "code_masked", "amount", "result", "reason", "approval",
                  "reference", "answered_ms")
CASE_COLUMNS = ("case", "terminal", "seq", "complaint", "status", "resolution", "reason", "refund_fen", "opened",
                "resolved", "resolve_s")
GUARDIAN_COLUMNS = ("terminal", "seq", "time", "time_local", "issuer", "pass", "holder_hex", "direction")
RULE = ("Fee, fee refund and subsidy are computed once per row (merchant, terminal, day) on its exact sums and "
        "rounded half up to the fen once: fee = approved amount x fee rate; eligible = the approved UnionPay QR "
        "payments below 500 yuan each; fee refund = eligible x fee rate; subsidy = eligible x 0.2 %; net = "
        "approved - fee + fee refund + subsidy - refunded (complaints refunded to the passenger). Merchant totals add "
        "the rows.")

def ppm_of(amount, ppm):
    """amount * ppm / 1e6 rounded half up, in integer arithmetic."""
    return (amount * ppm + 500000) // 1000000


def subsidy_eligible(rec):
    """A UnionPay QR payment (CPM with a UnionPay AID) below the programme's limit."""
    aid = rec["ext"].get(record.EXT_AID, b"")
    return rec["kind"] == record.KIND_QR_CPM and aid.startswith(UNIONPAY_RID) and rec["amount"] < SUBSIDY_LIMIT_FEN


def _day(rec):
    return time.strftime("%Y-%m-%d", time.gmtime(rec["time"] + CST))


def taps_of(rec):
    """How many declined taps a declined record stands for: itself and the identical ones coalesced into it."""
    repeats = rec["ext"].get(record.EXT_REPEATS)
    return 1 + (struct.unpack("<H", repeats)[0] if repeats is not None and len(repeats) == 2 else 0)


def reconcile(store, fee_ppm=DEFAULT_FEE_PPM):
    """Rows (dicts with COLUMNS) per merchant, terminal and day, sorted; `store` is host_sim.backend.store.Store."""
    groups = {}

    def group(merchant, terminal, day):
        g = groups.get((merchant, terminal, day))
        if g is None:
            g = groups[(merchant, terminal, day)] = dict.fromkeys(COLUMNS, 0)
            g.update(merchant=merchant, terminal=terminal, day=day)
        return g

    for terminal, raw, merchant in store.declined_rows():
        rec = record.decode(raw)
        group(merchant, terminal, _day(rec))["declined_taps"] += taps_of(rec)
    refunded = store.refunded()
    for terminal, raw, approved, merchant in store.settlement_rows():
        rec = record.decode(raw)
        g = group(merchant, terminal, _day(rec))
        back = refunded.get((terminal, rec["seq"])) if approved else None
        if back is not None:  # a complaint's refund (cases.py): deducted on the transaction's row
            g["refunded"] += 1
            g["refunded_fen"] += back
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
            g["approved"] += 1
            g["approved_fen"] += amount
            if subsidy_eligible(rec):
                g["eligible_fen"] += amount
    out = []
    for key in sorted(groups):
        g = groups[key]
        g["fee_fen"] = ppm_of(g["approved_fen"], fee_ppm)  # RULE: on the exact sums, rounded once
        g["fee_refund_fen"] = ppm_of(g["eligible_fen"], fee_ppm)
        g["subsidy_fen"] = ppm_of(g["eligible_fen"], SUBSIDY_PPM)
        g["net_settlement_fen"] = (g["approved_fen"] - g["fee_fen"] + g["fee_refund_fen"] + g["subsidy_fen"]
                                   - g["refunded_fen"])
        out.append(g)
    return out


def declines(store):
    """Declined taps per merchant, terminal, CST day and reason (dicts with DECLINE_COLUMNS), sorted."""
    groups = {}
    for terminal, raw, merchant in store.declined_rows():
        rec = record.decode(raw)
        key = (merchant, terminal, _day(rec), rec["reason"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = dict(zip(DECLINE_COLUMNS, key + (record.REASON_TEXT.get(rec["reason"], "reason %d"
                                                                                           % rec["reason"]), 0, 0)))
        g["taps"] += taps_of(rec)
        g["records"] += 1
    return [groups[k] for k in sorted(groups)]


def declines_per_reason(rows):
    """{merchant: {reason_text: taps}} of declines() rows."""
    out = {}
    for r in rows:
        per = out.setdefault(r["merchant"], {})
        per[r["reason_text"]] = per.get(r["reason_text"], 0) + r["taps"]
    return out


def per_merchant(rows):
    totals = {}
    for r in rows:
        t = totals.setdefault(r["merchant"], dict.fromkeys(COLUMNS[3:], 0))
        for k in COLUMNS[3:]:
            t[k] += r[k]
    return totals


def write_csv(rows, path, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
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


def case_rows(store):
    """Every complaint case (host_sim/backend/cases.py) as dicts with CASE_COLUMNS."""
    from host_sim.backend import cases

    return [{"case": c["id"], **{k: c[k] for k in CASE_COLUMNS[1:]}} for c in cases.show(store)]


def median_resolve_s(rows):
    """The median seconds from opening to resolution of the resolved cases (None: none resolved)."""
    times = sorted(r["resolve_s"] for r in rows if r["resolve_s"] is not None)
    if not times:
        return None
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2


def _cases_html(rows, cells):
    resolved = [r for r in rows if r["status"] == "resolved"]
    median = median_resolve_s(rows)
    out = ["<h2>Complaints</h2><p>%d opened, %d resolved, median time to resolve %s; refunds %s yuan.</p>" % (
        len(rows), len(resolved), "-" if median is None else "%d s" % median,
        _yuan(sum(r["refund_fen"] or 0 for r in resolved)))]
    out.append("<table id='cases'><tr>%s</tr>" % cells(CASE_COLUMNS, "th"))
    for r in rows:
        out.append("<tr>%s</tr>" % cells(["" if r[k] is None else r[k] for k in CASE_COLUMNS]))
    out.append("</table>")
    return out


def monitoring_html(feed):
    """The Monitoring section of the page: terminal health and the alerts (host_sim/backend/monitor.py)."""
    from host_sim.backend import monitor

    def cells(values, tag="td"):
        return "".join("<%s>%s</%s>" % (tag, html.escape("" if v is None else str(v)), tag) for v in values)

    out = ["<h2>Monitoring</h2><p>Generated %s. %d terminals, %d alerts (silent, queue, damaged, quarantined, "
           "health, clock; velocity: one card at many terminals in a short time).</p>"
           % (feed["generated"], len(feed["terminals"]), len(feed["alerts"]))]
    out.append("<table id='alerts'><tr>%s</tr>" % cells(monitor.ALERT_COLUMNS, "th"))
    for a in feed["alerts"]:
        out.append("<tr>%s</tr>" % cells([a[k] for k in monitor.ALERT_COLUMNS]))
    out.append("</table><table id='health'><tr>%s</tr>" % cells(monitor.HEALTH_COLUMNS, "th"))
    for t in feed["terminals"]:
        out.append("<tr>%s</tr>" % cells([" ".join(t[k]) if k == "health_clear" and t[k] is not None else t[k]
                                          for k in monitor.HEALTH_COLUMNS]))
    out.append("</table>")
    return out


def write_html(rows, path, fee_ppm, decline_rows=(), promo_rows=(), promo_flagged=(), cases=(), extra=()):
    totals = per_merchant(rows)
    money = {"gross_fen", "approved_fen", "declined_fen", "pending_fen", "fee_fen", "fee_refund_fen",
             "subsidy_fen", "net_settlement_fen", "eligible_fen", "refunded_fen"}

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
            "<p id='rule'>%s</p>" % html.escape(RULE),
            "<h2>Subsidy per merchant</h2>", _chart(totals),
            "<h2>Per merchant</h2><table id='merchants'><tr>%s</tr>" % cells(["merchant"] + label(COLUMNS[3:]), "th")]
    for name in sorted(totals):
        body.append("<tr>%s</tr>" % cells([name] + show(totals[name], COLUMNS[3:])))
    body.append("</table><h2>Per merchant, terminal and day</h2>")
    body.append("<table id='detail'><tr>%s</tr>" % cells(label(COLUMNS), "th"))
    for r in rows:
        body.append("<tr>%s</tr>" % cells(show(r, COLUMNS)))
    body.append("</table><h2>Declined taps per reason</h2>")
    body.append("<p>Taps the terminals refused (no transaction, nothing settles); a record may stand for "
                "identical declines coalesced into it.</p>")
    per_reason = declines_per_reason(decline_rows)
    body.append("<table id='declines-merchant'><tr>%s</tr>" % cells(["merchant", "reason", "taps"], "th"))
    for name in sorted(per_reason):
        for reason in sorted(per_reason[name]):
            body.append("<tr>%s</tr>" % cells([name, reason, per_reason[name][reason]]))
    body.append("</table><table id='declines'><tr>%s</tr>" % cells(DECLINE_COLUMNS, "th"))
    for r in decline_rows:
        body.append("<tr>%s</tr>" % cells([r[k] for k in DECLINE_COLUMNS]))
    body.append("</table>")
    if promo_rows or promo_flagged:
        body.append("<h2>Promotions (随机立减)</h2><p>Discounts given per programme and day against its daily "
                    "budgets; flagged: discounts the recomputed draw did not grant.</p>")
        body.append("<table id='promotions'><tr>%s</tr>" % cells(promotions.SPEND_COLUMNS, "th"))
        for r in promo_rows:
            body.append("<tr>%s</tr>" % cells([r[k] for k in promotions.SPEND_COLUMNS]))
        body.append("</table><table id='promotion-flagged'><tr>%s</tr>" % cells(promotions.AUDIT_COLUMNS, "th"))
        for r in promo_flagged:
            body.append("<tr>%s</tr>" % cells([r[k] for k in promotions.AUDIT_COLUMNS]))
        body.append("</table>")
    body.extend(_cases_html(cases, cells))
    body.extend(extra)
    body.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(body))


def seq_jumps(store):
    """The KIND_SEQ_JUMP records: where a terminal's numbering was lifted above the host's seq_high."""
    out = []
    for terminal, seq, when, raw in store.query("SELECT terminal, seq, time, raw FROM records WHERE kind = ? "
                                                "ORDER BY terminal, seq", (record.KIND_SEQ_JUMP,)):
        ext = record.decode(bytes(raw))["ext"].get(record.EXT_SEQ_JUMP, b"")
        first, last = struct.unpack("<II", ext) if len(ext) == 8 else (None, None)
        out.append({"terminal": terminal, "seq": seq, "time": when, "first": first, "last": last})
    return out


def guardian_rows(store):
    """Every accepted school-pass record carrying a guardian notice, in terminal and sequence order."""
    out = []
    for terminal, seq, when, raw in store.query(
            "SELECT terminal, seq, time, raw FROM records WHERE kind = ? AND decision = ? ORDER BY terminal, seq",
            (record.KIND_SCHOOL_PASS, record.ACCEPTED)):
        ext = record.decode(bytes(raw))["ext"]
        if record.EXT_GUARDIAN not in ext:
            continue
        school = ext.get(record.EXT_SCHOOL, b"")
        direction, issuer, pass_id = (struct.unpack(">BH8s", school[:11]) if len(school) >= 11
                                      else (0, None, b""))
        out.append({"terminal": terminal, "seq": seq, "time": when,
                    "time_local": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when + CST)),
                    "issuer": issuer, "pass": pass_id.hex(), "holder_hex": ext[record.EXT_GUARDIAN].hex(),
                    "direction": {record.SCHOOL_BOARD: "board", record.SCHOOL_ALIGHT: "alight"}.get(direction, "")})
    return out


def online_rows(store):
    """Every online payment-code authorisation (host_sim/backend/online.py), reversals included."""
    return [dict(zip(ONLINE_COLUMNS, r)) for r in store.query(
        "SELECT %s FROM online_auth ORDER BY terminal, request_id" % ", ".join(ONLINE_COLUMNS))]


def main(args):
    product, offset, programmes = args.promotions or promotions.NONE
    store = Store(args.db)
    try:
        for assignment in args.merchant or ():
            terminal, _, merchant = assignment.partition("=")
            store.assign_merchant(terminal, merchant)
        rows = reconcile(store, args.fee_rate_ppm)
        decline_rows = declines(store)
        conflict_rows = [{"terminal": t, "seq": seq, "record_hex": raw.hex()} for t, seq, raw in store.conflicts()]
        refused_rows = [{"terminal": t, "seq": seq, "reason": REFUSED_NAMES.get(reason, str(reason)), "detail": detail,
                         "notified": int(notified), "record_hex": raw.hex()}
                        for t, seq, reason, raw, detail, notified in store.refused()]
        jump_rows = seq_jumps(store)
        online = online_rows(store)
        guardian = guardian_rows(store)
        promo_rows = promotions.spend(store, programmes, offset)
        audit_rows = promotions.audit(store, programmes, product, offset)
        cases = case_rows(store)
        feed = monitor.feed(store)
    finally:
        store.close()
    os.makedirs(args.out, exist_ok=True)
    write_csv(rows, os.path.join(args.out, "reconciliation.csv"))
    write_csv(decline_rows, os.path.join(args.out, "declines.csv"), DECLINE_COLUMNS)
    write_csv(conflict_rows, os.path.join(args.out, "conflicts.csv"), CONFLICT_COLUMNS)
    write_csv(refused_rows, os.path.join(args.out, "refused.csv"), REFUSED_COLUMNS)
    write_csv(jump_rows, os.path.join(args.out, "seq_jumps.csv"), JUMP_COLUMNS)
    write_csv(online, os.path.join(args.out, "online.csv"), ONLINE_COLUMNS)
    write_csv(guardian, os.path.join(args.out, "guardian.csv"), GUARDIAN_COLUMNS)
    write_csv(promo_rows, os.path.join(args.out, "promotions.csv"), promotions.SPEND_COLUMNS)
    write_csv(audit_rows, os.path.join(args.out, "promotion_audit.csv"), promotions.AUDIT_COLUMNS)
    flagged = promotions.flagged(audit_rows)
    write_csv(cases, os.path.join(args.out, "cases.csv"), CASE_COLUMNS)
    write_html(rows, os.path.join(args.out, "reconciliation.html"), args.fee_rate_ppm, decline_rows, promo_rows,
               flagged, cases, monitoring_html(feed))
    write_csv(feed["alerts"], os.path.join(args.out, "alerts.csv"), monitor.ALERT_COLUMNS)
    write_csv([dict(t, health_clear=" ".join(t["health_clear"] or ())) for t in feed["terminals"]],
              os.path.join(args.out, "terminal_health.csv"), monitor.HEALTH_COLUMNS)
    totals = per_merchant(rows)
    print(json.dumps({"rows": len(rows), "merchants": len(totals),
                      "subsidy_fen": sum(t["subsidy_fen"] for t in totals.values()),
                      "fee_refund_fen": sum(t["fee_refund_fen"] for t in totals.values()),
                      "declined_taps": sum(r["taps"] for r in decline_rows),
                      "conflicts": len(conflict_rows), "conflicts_csv": os.path.join(args.out, "conflicts.csv"),
                      "refused": len(refused_rows), "refused_csv": os.path.join(args.out, "refused.csv"),
                      "seq_jumps": len(jump_rows), "seq_jumps_csv": os.path.join(args.out, "seq_jumps.csv"),
                      "online": len(online), "online_reversed": sum(1 for r in online if r["result"] == "reversed"),
                      "online_csv": os.path.join(args.out, "online.csv"),
                      "guardian_notices": len(guardian), "guardian_csv": os.path.join(args.out, "guardian.csv"),
                      "promotion_discounts": len(audit_rows),
                      "promotion_discount_fen": sum(r["discount_fen"] for r in audit_rows),
                      "promotion_flagged": len(flagged),
                      "promotions_csv": os.path.join(args.out, "promotions.csv"),
                      "promotion_audit_csv": os.path.join(args.out, "promotion_audit.csv"),
                      "cases": len(cases), "cases_resolved": sum(1 for c in cases if c["status"] == "resolved"),
                      "cases_median_resolve_s": median_resolve_s(cases),
                      "cases_csv": os.path.join(args.out, "cases.csv"),
                      "alerts": len(feed["alerts"]), "alerts_csv": os.path.join(args.out, "alerts.csv"),
                      "terminal_health_csv": os.path.join(args.out, "terminal_health.csv"),
                      "refunded_fen": sum(r["refunded_fen"] for r in rows),
                      "csv": os.path.join(args.out, "reconciliation.csv"),
                      "declines_csv": os.path.join(args.out, "declines.csv"),
                      "html": os.path.join(args.out, "reconciliation.html")}))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, type=arguments.existing_database, help="the collector's SQLite database")
    parser.add_argument("--out", default="reports", help="directory for reconciliation.csv, declines.csv and .html")
    parser.add_argument("--fee-rate-ppm", type=int, default=DEFAULT_FEE_PPM, help="acquiring fee, parts per million")
    parser.add_argument("--merchant", action="append", metavar="TERMINAL=NAME",
                        help="assign a terminal (hex id) to a merchant (repeatable, remembered)")
    parser.add_argument("--promotions", metavar="PROFILE.json", type=promotions.option,
                        help="the profile (or its promotions list) whose programmes the audit checks each "
                             "discount against, with their budgets")
