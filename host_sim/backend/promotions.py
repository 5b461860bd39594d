"""The county's promotions on the host: what each programme gave away per day against its budgets, and
an audit that recomputes every draw from the record and the terminal's device key (protocol/promotion.py).

The programmes come from the profile the operator signed (`report --promotions PROFILE.json`: the profile
body, or its "promotions" list alone; then the product is not checked).  Without them the spend is still
counted per programme id and day, and each draw is still checked against the record, but not its chance,
discount or dates.  The per-programme daily budget is the host's to keep: when a day's spend reaches
it the operator stops the programme with a new profile version (protocol/SPEC.md "Promotions").
"""

import argparse
import json
import time

from protocol import profile as profiles
from protocol import promotion, record

DEFAULT_UTC_OFFSET = profiles.DEFAULT_UTC_OFFSET
SPEND_COLUMNS = ("promotion", "day", "terminals", "discounts", "discount_fen", "programme_daily_fen",
                 "max_terminal_fen", "terminal_daily_fen", "over_programme_budget", "over_terminal_budget")
AUDIT_COLUMNS = ("terminal", "seq", "time", "promotion", "fare_fen", "discount_fen", "draw", "verdict")


class PromotionsFileError(ValueError):
    pass


def load(path):
    """(product or None, utc offset, {id: compiled programme}) of a profile body or promotions list file."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:
        raise PromotionsFileError("%s: %s" % (path, e)) from None
    product, offset = None, profiles.DEFAULT_UTC_OFFSET
    if isinstance(obj, dict):
        try:
            obj = profiles.parse(json.dumps(obj).encode())
        except profiles.ProfileError as e:
            raise PromotionsFileError("%s: %s" % (path, e)) from None
        product, offset = obj["profile"], obj["utc_offset_s"]
        obj = obj.get("promotions")
        if obj is None:
            raise PromotionsFileError("%s: the profile has no promotions section" % path)
    try:
        compiled = promotion.programmes(obj)
    except profiles.ProfileError as e:
        raise PromotionsFileError("%s: %s" % (path, e)) from None
    return product, offset, {p[promotion.ID]: p for p in compiled}


NONE = (None, DEFAULT_UTC_OFFSET, None)  # no --promotions: no product, the default offset, no programmes


def option(path):
    """argparse type of `--promotions PROFILE.json`: load(path), or one line naming what is wrong."""
    try:
        return load(path)
    except PromotionsFileError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _day(seconds, offset):
    return time.strftime("%Y-%m-%d", time.gmtime(seconds + offset))


def discounted_records(store):
    """(terminal hex, decoded record, (id, discount, draw)) of every accepted record with a discount."""
    out = []
    for terminal, raw in store.query("SELECT terminal, raw FROM records WHERE decision = ? ORDER BY terminal, seq",
                                     (record.ACCEPTED,)):
        rec = record.decode(bytes(raw))
        try:
            got = promotion.of_record(rec)
        except ValueError:
            got = (0, 0, 0)
        if got is not None:
            out.append((terminal, rec, got))
    return out


def audit(store, programmes=None, product=None, offset=DEFAULT_UTC_OFFSET):
    """AUDIT_COLUMNS rows, one per discounted record; verdict "ok" or why the draw did not grant it."""
    rows = []
    keys = {}
    for terminal, rec, (pid, discount, value) in discounted_records(store):
        if terminal not in keys:
            device_key = store.device_key(terminal)
            keys[terminal] = None if device_key is None else promotion.key_of(device_key)
        key = keys[terminal]
        fare = rec["amount"] + discount
        if pid == 0:
            verdict = "malformed promotion extensions"
        elif key is None:
            verdict = "no device key for this terminal: cannot recompute the draw"
        elif programmes is None:
            same = promotion.draw(key, pid, rec["terminal"], rec["seq"], rec["time"], rec["kind"], fare,
                                  rec["token"]) == value
            verdict = "ok (draw only)" if same else "draw does not match the record"
        else:
            p = programmes.get(pid)
            day = profiles.local_day({"utc_offset_s": offset}, rec["time"])
            what = product if product is not None else (p[promotion.PROFILE_SET][0] if p else None)
            verdict = promotion.audit(key, rec, p, what, day) or "ok"
        rows.append({"terminal": terminal, "seq": rec["seq"], "time": rec["time"], "promotion": pid, "fare_fen": fare,
                     "discount_fen": discount, "draw": value, "verdict": verdict})
    return rows


def flagged(rows):
    return [r for r in rows if not r["verdict"].startswith("ok")]


def spend(store, programmes=None, offset=DEFAULT_UTC_OFFSET):
    """SPEND_COLUMNS rows per programme and local day: the discounts given, against the budgets."""
    groups = {}
    for terminal, rec, (pid, discount, _) in discounted_records(store):
        key = (pid, _day(rec["time"], offset))
        g = groups.setdefault(key, {"per_terminal": {}, "discounts": 0, "discount_fen": 0})
        g["discounts"] += 1
        g["discount_fen"] += discount
        g["per_terminal"][terminal] = g["per_terminal"].get(terminal, 0) + discount
    rows = []
    for (pid, day) in sorted(groups):
        g = groups[(pid, day)]
        p = (programmes or {}).get(pid)
        most = max(g["per_terminal"].values())
        programme_budget = p[promotion.PROGRAMME_DAILY] if p else ""
        terminal_budget = p[promotion.TERMINAL_DAILY] if p else ""
        rows.append({"promotion": pid, "day": day, "terminals": len(g["per_terminal"]), "discounts": g["discounts"],
                     "discount_fen": g["discount_fen"], "programme_daily_fen": programme_budget,
                     "max_terminal_fen": most, "terminal_daily_fen": terminal_budget,
                     "over_programme_budget": int(bool(p) and g["discount_fen"] > programme_budget),
                     "over_terminal_budget": int(bool(p) and most > terminal_budget)})
    return rows
