"""Monitoring: each terminal's health from its newest STATUS and TIME, and velocity anomalies per card
token, as alerts in one JSON feed (and a section of the report).

    python -m host_sim monitor --db DB [--json] [--stale-s 600] [--depth 500] [--drift-ms 2000]
                               [--window-s 600] [--terminals 3] [--since UNIX]

Terminal alerts: `silent` (nothing heard for --stale-s; terminals send STATUS every 5 s while linked,
so this is a terminal off the air), `queue` (more than --depth records not yet acknowledged), `damaged`
(journal records lost to damage or damaged entries dropped), `quarantined` (records the collector refused
that the terminal keeps aside), `health` (the journal, clock or config bit clear, or the scanner's: the NFC
bit is clear on every terminal without a reader, so it is shown, never alerted), `clock` (its clock
differs from ours by more than --drift-ms at its newest TIME request).  Velocity: `velocity` when one token
paid at --terminals or more terminals within --window-s (terminal times): one card in several places at
once is a copied card or a shared code.
"""

import argparse
import datetime
import json
import sys

from host_sim import arguments
from host_sim.backend.backoffice import HEALTH_NAMES
from host_sim.backend.store import Store
from protocol import link

STALE_S = 600
DEPTH = 500
DRIFT_MS = 2000
WINDOW_S = 600
TERMINALS = 3
LOOKBACK_S = 7 * 86400  # velocity looks at taps of the last week by default
ALERTED_BITS = (link.HEALTH_JOURNAL, link.HEALTH_CLOCK, link.HEALTH_CONFIG, link.HEALTH_SCANNER)
HEALTH_COLUMNS = ("terminal", "last_seen", "silent_s", "depth", "health", "health_clear", "quarantined", "damaged",
                  "journal_dropped", "drift_ms", "log_alerts", "deny_version")
ALERT_COLUMNS = ("kind", "severity", "terminal", "token", "detail")


def _iso_unix(seconds):
    return datetime.datetime.fromtimestamp(round(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminal_health(store):
    """Per terminal: a dict with HEALTH_COLUMNS (health_clear: the names of the bits that are clear)."""
    now = store.now()
    out = []
    for row in store.health_rows():
        seen = max([t for t in (row["status_at"], row["hello_at"], row["clock_at"]) if t is not None], default=None)
        health = row["health"]
        out.append({
            "terminal": row["terminal"],
            "last_seen": None if seen is None else _iso_unix((seen - 2440587.5) * 86400),
            "silent_s": None if seen is None else round((now - seen) * 86400),
            "depth": row["depth"], "health": health,
            "health_clear": None if health is None else [n for bit, n in HEALTH_NAMES if not health & bit],
            "quarantined": row["quarantined"], "damaged": row["damaged"], "journal_dropped": row["journal_dropped"],
            "drift_ms": row["drift_ms"], "log_alerts": row["log_alerts"], "deny_version": row["deny_version"]})
    return out


def terminal_alerts(health_rows, stale_s=STALE_S, depth=DEPTH, drift_ms=DRIFT_MS):
    """Alerts (dicts with ALERT_COLUMNS) of terminal_health() rows."""
    out = []

    def alert(kind, severity, row, detail):
        out.append({"kind": kind, "severity": severity, "terminal": row["terminal"], "token": None, "detail": detail})

    for row in health_rows:
        if row["silent_s"] is None or row["silent_s"] > stale_s:
            alert("silent", "critical", row, "never heard from" if row["silent_s"] is None else
                  "nothing heard for %d s (since %s)" % (row["silent_s"], row["last_seen"]))
        if (row["depth"] or 0) > depth:
            alert("queue", "warning", row, "%d records not yet acknowledged" % row["depth"])
        if row["damaged"] or row["journal_dropped"]:
            alert("damaged", "critical", row, "%d journal records lost to damage, %d damaged entries dropped"
                  % (row["damaged"] or 0, row["journal_dropped"] or 0))
        if row["quarantined"]:
            alert("quarantined", "warning", row, "%d records refused by the collector kept aside"
                  % row["quarantined"])
        if row["health"] is not None:
            clear = [n for bit, n in HEALTH_NAMES if bit in ALERTED_BITS and not row["health"] & bit]
            if clear:
                alert("health", "warning", row, "not ok: " + ", ".join(clear))
        if row["drift_ms"] is not None and abs(row["drift_ms"]) > drift_ms:
            alert("clock", "warning", row, "clock %+d ms from the collector's" % row["drift_ms"])
    return out


def velocity_alerts(store, since, window_s=WINDOW_S, terminals=TERMINALS):
    """One alert per token that paid at `terminals` or more distinct terminals within `window_s` seconds
    (taps since `since`, terminal times); the window with the most terminals is reported."""
    by_token = {}
    for token, terminal, when in store.tap_times(since):
        by_token.setdefault(token, []).append((when, terminal))
    out = []
    for token, taps in sorted(by_token.items()):
        best, first = None, 0
        for last in range(len(taps)):
            while taps[last][0] - taps[first][0] > window_s:
                first += 1
            places = {t for _, t in taps[first:last + 1]}
            if len(places) >= terminals and (best is None or len(places) > len(best[0])):
                best = (places, taps[first][0], taps[last][0], last + 1 - first)
        if best is not None:
            places, start, end, count = best
            out.append({"kind": "velocity", "severity": "critical", "terminal": None, "token": token.hex(),
                        "detail": "%d taps at %d terminals within %d s (%s .. %s): %s" % (
                            count, len(places), end - start, _iso_unix(start), _iso_unix(end),
                            " ".join(sorted(places)))})
    return out


def feed(store, since=None, stale_s=STALE_S, depth=DEPTH, drift_ms=DRIFT_MS, window_s=WINDOW_S, terminals=TERMINALS):
    """The monitoring feed: {"generated", "terminals": terminal_health(), "alerts": [...]}."""
    now_unix = (store.now() - 2440587.5) * 86400
    since = now_unix - LOOKBACK_S if since is None else since
    health = terminal_health(store)
    alerts = terminal_alerts(health, stale_s, depth, drift_ms) + velocity_alerts(store, since, window_s, terminals)
    return {"generated": _iso_unix(now_unix), "terminals": health, "alerts": alerts}


def main(args):
    store = Store(args.db)
    try:
        out = feed(store, args.since, args.stale_s, args.depth, args.drift_ms, args.window_s, args.terminals)
    finally:
        store.close()
    if args.json:
        print(json.dumps(out))
    else:
        for a in out["alerts"]:
            print("%-8s %-11s %s: %s" % (a["severity"], a["kind"], a["terminal"] or "token " + a["token"], a["detail"]))
        print("%d terminals, %d alerts" % (len(out["terminals"]), len(out["alerts"])), file=sys.stderr)
    return 0


def _positive(text):
    value = argparse.ArgumentTypeError
    try:
        number = int(text)
    except ValueError:
        raise value("%r is not a whole number" % text) from None
    if number < 1:
        raise value("%d is not a positive number" % number)
    return number


def add_arguments(parser):
    parser.add_argument("--db", required=True, type=arguments.existing_database,
                        help="the collector's database (SQLite file or postgresql:// URL)")
    parser.add_argument("--json", action="store_true", help="the feed as one JSON object (default: one line per alert)")
    parser.add_argument("--stale-s", type=_positive, default=STALE_S, help="silent after this many seconds")
    parser.add_argument("--depth", type=_positive, default=DEPTH, help="alert above this many unacknowledged records")
    parser.add_argument("--drift-ms", type=_positive, default=DRIFT_MS, help="alert above this clock difference")
    parser.add_argument("--window-s", type=_positive, default=WINDOW_S, help="velocity: the time window")
    parser.add_argument("--terminals", type=_positive, default=TERMINALS,
                        help="velocity: this many distinct terminals within the window is an anomaly")
    parser.add_argument("--since", type=int, metavar="UNIX", help="velocity: taps from this time (default: a week ago)")
