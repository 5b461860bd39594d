"""Complaints: a passenger's complaint opens a case about one transaction; its resolution refunds,
re-enables the card or rejects with a reason.  Every step is timestamped, so the programme can report
how fast complaints are answered.

    python -m host_sim case open --db DB (--ref TERMINAL:SEQ | --token HEX --time WHEN) [--complaint TEXT]
    python -m host_sim case show --db DB [--case N]
    python -m host_sim case resolve --db DB --case N (--refund FEN | --re-enable | --reject REASON)

Opening looks the transaction up (by reference, or the accepted tap of that token nearest WHEN) and keeps
what was found with the case: the record, the terminal's decision, the acquirer's (the issuer's) answer,
the card's deny-list state and the terminal's health as last reported.  The collector keeps no log lines of
the terminals (STATUS carries only their counts, protocol/SPEC.md "STATUS fields"): those are kept as counts.
A refund goes to the acquirer as an 0400 (host_sim/backend/ISO8583.md "Refunds") and, approved, is
deducted in settlement (report.py); re-enabling takes the card's token off the deny list as `acquirer
--allow` does, a removal every terminal gets at its next exchange.  Refused with a reason, nothing
changed: an unknown transaction, a second refund of one transaction, a refund above the fare, a refund of a
transaction that was never charged, resolving a case twice.
"""

import datetime
import json
import sys

from host_sim import arguments
from host_sim.backend import acquirer, acquirer_link
from host_sim.backend.store import Store
from protocol import record

NEAR_S = 900  # a complaint by token and time finds the tap within 15 minutes of the time given
CST = datetime.timezone(datetime.timedelta(hours=8))
JULIAN_UNIX = 2440587.5  # julian day of 1970-01-01T00:00Z


class CaseRefused(Exception):
    """A request the case desk refuses; str(e) is the reason.  Nothing was changed."""


def unix(julian):
    """Seconds since 1970 of a julian day the database wrote (None stays None)."""
    return None if julian is None else (julian - JULIAN_UNIX) * 86400.0


def iso(julian):
    """A julian day as ISO 8601 UTC to the second."""
    if julian is None:
        return None
    when = datetime.datetime.fromtimestamp(round(unix(julian)), datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """Seconds since 1970 from digits or an ISO 8601 date-time (without an offset: China Standard Time)."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CaseRefused("--time %r is neither seconds since 1970 nor an ISO date-time" % text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CST)
    return int(when.timestamp())


def parse_ref(text):
    """(terminal hex, seq) of a transaction reference TERMINAL:SEQ."""
    terminal, _, seq = text.rpartition(":")
    try:
        bytes.fromhex(terminal)
    except ValueError:
        terminal = ""
    if not terminal or not seq.isdigit():
        raise CaseRefused("a transaction reference is TERMINAL:SEQ (terminal id in hex), got %r" % text)
    return terminal.lower(), int(seq)


def _describe(rec):
    return {"terminal": rec["terminal"].hex(), "seq": rec["seq"], "time": rec["time"],
            "time_local": datetime.datetime.fromtimestamp(rec["time"], CST).strftime("%Y-%m-%d %H:%M:%S"),
            "kind": rec["kind"], "amount_fen": rec["amount"], "currency": rec["currency"],
            "decision": "accepted" if rec["decision"] == record.ACCEPTED else "declined",
            "reason": record.REASON_TEXT.get(rec["reason"], rec["reason"]) if rec["reason"] else None,
            "token": rec["token"].hex()}


def findings(store, terminal, seq, raw):
    """What the collector knows about one transaction, as a dict kept with the case."""
    rec = record.decode(raw)
    auth = store.authorisation(terminal, seq)
    listed = [r for t, _, r, _ in store.denied() if t == rec["token"]]
    status = store.latest_status(terminal)
    return {"record": _describe(rec),
            "issuer": None if auth is None else {"approved": bool(auth[0]), "reason": auth[1], "at": iso(auth[2])},
            "deny_list": {"listed": bool(listed), "reason": listed[0] if listed else None},
            "terminal_status": status,
            "terminal_log": None if status is None else {k: status.get(k) for k in ("log_lines", "log_alerts")},
            "refund": _refund_dict(store.refund(terminal, seq))}


def _refund_dict(row):
    return None if row is None else dict(zip(("case", "amount_fen", "result", "reason"), row))


def find(store, ref=None, token=None, when=None):
    """(terminal, seq, raw) of the complained-about transaction: by reference, or the accepted tap of
    `token` (hex) nearest `when`; CaseRefused when there is none."""
    if ref is not None:
        terminal, seq = parse_ref(ref)
        raw = store.record(terminal, seq)
        if raw is None:
            raise CaseRefused("no transaction %s:%d at the collector" % (terminal, seq))
        return terminal, seq, raw
    try:
        tok = bytes.fromhex(token)
    except ValueError:
        raise CaseRefused("--token wants the card's token in hex, got %r" % token) from None
    taps = store.taps_of_token(tok, when - NEAR_S, when + NEAR_S)
    if not taps:
        raise CaseRefused("no accepted tap of token %s within %d minutes of %s" % (
            token, NEAR_S // 60, datetime.datetime.fromtimestamp(when, CST).isoformat()))
    return min(taps, key=lambda t: abs(record.decode(t[2])["time"] - when))


def open_case(store, complaint, ref=None, token=None, when=None):
    """Open a case; returns its id."""
    terminal, seq, raw = find(store, ref, token, when)
    return store.open_case(terminal, seq, complaint or "", json.dumps(findings(store, terminal, seq, raw)))


def show(store, case_id=None):
    """Cases as JSON-ready dicts with their steps and response time (seconds from opening to resolution)."""
    out = []
    for case in store.cases(case_id):
        case = dict(case)
        case["found"] = json.loads(case["found"]) if case["found"] else None
        case["resolve_s"] = None if case["resolved"] is None else round(unix(case["resolved"]) - unix(case["opened"]))
        case["opened"], case["resolved"] = iso(case["opened"]), iso(case["resolved"])
        case["steps"] = [{"step": s, "action": a, "detail": d, "at": iso(at)} for s, a, d, at in
                         store.case_steps(case["id"])]
        out.append(case)
    return out


def _open(store, case_id):
    cases = store.cases(case_id)
    if not cases:
        raise CaseRefused("no case %d" % case_id)
    if cases[0]["status"] != "open":
        raise CaseRefused("case %d is resolved already (%s)" % (case_id, cases[0]["resolution"]))
    return cases[0]


def refund(store, case_id, amount, link):
    """Refund `amount` fen of the case's transaction over the acquirer `link` and close the case."""
    case = _open(store, case_id)
    terminal, seq = case["terminal"], case["seq"]
    rec = record.decode(store.record(terminal, seq))
    if amount <= 0:
        raise CaseRefused("a refund is a positive number of fen, got %d" % amount)
    if rec["decision"] != record.ACCEPTED:
        raise CaseRefused("transaction %s:%d was declined by the terminal: nothing was charged" % (terminal, seq))
    if amount > rec["amount"]:
        raise CaseRefused("refund of %d fen is larger than the fare of %d fen" % (amount, rec["amount"]))
    auth = store.authorisation(terminal, seq)
    if auth is None or not auth[0]:
        raise CaseRefused("transaction %s:%d was %s: nothing was charged" % (
            terminal, seq, "not authorised yet" if auth is None else "declined by the acquirer"))
    held = store.refund(terminal, seq)
    if held is not None or not store.add_refund(terminal, seq, case_id, amount):
        held = held or store.refund(terminal, seq)
        raise CaseRefused("transaction %s:%d was refunded already (case %d, %d fen)" % (terminal, seq, held[0],
                                                                                          held[1]))
    store.case_step(case_id, "refund sent", "%d fen as an 0400" % amount)
    try:
        ok, reason = acquirer_link.refund(link, terminal, seq, amount, rec["currency"], case_id)
    except acquirer_link.AcquirerUnavailable as e:
        store.drop_refund(terminal, seq)
        store.case_step(case_id, "refund failed", str(e))
        raise CaseRefused("acquirer unavailable, nothing refunded: %s" % e) from None
    store.refund_answered(terminal, seq, "approved" if ok else "declined", reason)
    if not ok:
        store.drop_refund(terminal, seq)
        store.case_step(case_id, "refund declined", reason)
        raise CaseRefused("the acquirer declined the refund: %s" % reason)
    store.resolve_case(case_id, "refund", "%d fen refunded" % amount, amount)


def re_enable(store, case_id, why):
    """Take the case's card off the deny list (every terminal gets the removal) and close the case."""
    case = _open(store, case_id)
    token = record.decode(store.record(case["terminal"], case["seq"]))["token"]
    out = acquirer.allow(store, [token.hex()], "case %d: %s" % (case_id, why))
    if not out["allowed"]:
        raise CaseRefused("card %s is not on the deny list" % token.hex())
    store.resolve_case(case_id, "re-enable", "deny-list version %d: %s" % (store.deny_list_version(), why))


def reject(store, case_id, reason):
    _open(store, case_id)
    if not reason.strip():
        raise CaseRefused("a rejection needs a reason")
    store.resolve_case(case_id, "reject", reason)


def _link(args):
    if args.acquirer:
        return acquirer_link.TcpLink(args.acquirer)
    return acquirer.link_for(acquirer.Acquirer(acquirer.load_rules(args.rules) if args.rules else None))


def main(args):
    try:
        store = Store(args.db)
    except Exception as e:  # StoreError and the drivers' errors: one line
        print("case: %s" % e, file=sys.stderr)
        return 1
    try:
        if args.action == "open":
            if bool(args.ref) == bool(args.token):
                raise CaseRefused("give --ref TERMINAL:SEQ, or --token HEX with --time")
            if args.token and not args.time:
                raise CaseRefused("--token needs --time WHEN")
            case_id = open_case(store, args.complaint, args.ref, args.token,
                                parse_time(args.time) if args.time else None)
            print(json.dumps(show(store, case_id)[0], ensure_ascii=False))
        elif args.action == "show":
            print(json.dumps(show(store, args.case) if args.case is None else _one(store, args.case),
                             ensure_ascii=False))
        else:
            if args.case is None:
                raise CaseRefused("resolve needs --case N")
            chosen = [x for x in (args.refund is not None, args.re_enable, args.reject is not None) if x]
            if len(chosen) != 1:
                raise CaseRefused("resolve wants one of --refund FEN, --re-enable, --reject REASON")
            if args.refund is not None:
                link = _link(args)
                try:
                    refund(store, args.case, args.refund, link)
                finally:
                    link.close()
            elif args.re_enable:
                re_enable(store, args.case, args.why)
            else:
                reject(store, args.case, args.reject)
            print(json.dumps(_one(store, args.case), ensure_ascii=False))
    except CaseRefused as e:
        print("case: %s" % e, file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _one(store, case_id):
    found = show(store, case_id)
    if not found:
        raise CaseRefused("no case %d" % case_id)
    return found[0]


def add_arguments(parser):
    parser.add_argument("action", choices=("open", "show", "resolve"))
    parser.add_argument("--db", required=True, type=arguments.existing_database,
                        help="the collector's database (SQLite file or postgresql:// URL)")
    parser.add_argument("--ref", metavar="TERMINAL:SEQ", help="open: the transaction (terminal id hex, record seq)")
    parser.add_argument("--token", metavar="HEX", help="open: the card's token (`tokens show --pan`), with --time")
    parser.add_argument("--time", metavar="WHEN",
                        help="open: when the passenger paid, seconds since 1970 or ISO date-time (default CST)")
    parser.add_argument("--complaint", default="", help="open: what the passenger says")
    parser.add_argument("--case", type=int, metavar="N", help="show/resolve: the case number")
    parser.add_argument("--refund", type=int, metavar="FEN", help="resolve: refund this much (at most the fare)")
    parser.add_argument("--re-enable", action="store_true", help="resolve: take the card off the deny list")
    parser.add_argument("--why", default="re-enabled after a complaint", help="resolve --re-enable: reason kept")
    parser.add_argument("--reject", metavar="REASON", help="resolve: reject the complaint with this reason")
    parser.add_argument("--acquirer", metavar="HOST:PORT", type=arguments.host_port,
                        help="resolve --refund: the `acquirer-host` to send the 0400 to (default: in process)")
    parser.add_argument("--rules", type=arguments.json_file, help="resolve --refund: rules of an in-process acquirer")
