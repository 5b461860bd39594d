"""A scenario file (TOML): who taps where and when on which terminals, checked whole before a run.

    [scenario]
    name = "village bus day"
    date = "2026-12-04"          # the day simulated (local time UTC+8, as the terminals' profiles say)
    seed = 1                     # default seed; --seed overrides it

    [[terminals]]                # one table per kind of terminal
    name = "bus"                 # terminals are named bus-1, bus-2, ... (count of them)
    profile = "bus"              # bus | school | scenic (protocol/profile.py PROFILES)
    board = "virtual"            # a full virtual board (the MicroPython unix port)
    uplink = "serial"            # the link to the collector: serial, or cellular (a modem emulator)
    dialect = "quectel"          # cellular only: the modem's AT dialect (simcom | quectel)
    count = 1

    [profiles.bus.bus]           # optional: the profile bundle the terminals of profile "bus" receive, one
    fare = "stage"               # table per section of protocol/profile.py (bus, school, scenic, risk,
    default_fen = 400            # promotions), checked by the terminal's own checker; the run signs it for
    fares_fen = [100, 200, 300]  # each terminal group (the [[terminals]] name) and the collector offers it.
                                 # Without it a terminal runs the flat default.  A bus with zone or stage fares
                                 # takes its stops from [[stops]] (zone = ..., else the stop's index); the
                                 # driver display puts the bus at each stop as it gets there.  A promotion's
                                 # draw is keyed with the run's fresh device and token keys: one whose
                                 # chance_ppm is below 1000000 gives the same seed a different digest.

    [timeline]
    runs = ["06:30", "09:00"]    # local start time of each run along the stops (a gate: its opening)

    [[stops]]                    # in route order; a gate is one stop whose dwell is its opening hours
    name = "Xiacun"
    travel_s = 0                 # seconds from the previous stop (the first: from the run's start)
    dwell_s = 60                 # seconds the terminal is at the stop; taps fall uniformly within it
    boardings = 2.0              # mean passengers per visit (Poisson); default passengers.boardings
    zone = 0                     # optional: the stop's zone or stage for the bus profile's fares (0..31)

    [passengers]
    boardings = 1.5              # mean passengers per stop visit
    mix = { cpm = 0.9, forged = 0.05, expired = 0.03, garbage = 0.02 }   # weights, need not sum to 1
    rates = { "07" = 2.0, "12" = 0.5 }   # optional: per local hour, a multiplier of the boardings (default 1):
                                 # a visit's mean is shared over the hours it spans, each share times its rate,
                                 # so a gate open all day (one long dwell) follows the hours' rates
    pupils = 30                  # school: passes on each school's roster (the run signs the roster bundle)
    off_roster = 0.05            # school: share of the passes shown that are not on the roster (0..1)
    party = { "1" = 0.7, "4" = 0.3 }   # scenic: people per ticket, weights (a group ticket: one scan a person)
    passback = 0.05              # scenic: share of single visitors whose day pass comes back over the turnstile

    [[faults]]
    kind = "power_cut"           # the terminal loses power right after it answered a tap
    terminal = "bus-1"
    at = "08:00"                 # local time; the first tap at or after it is answered, then the cut
                                 # (coverage gaps, modem faults, collector crashes, acquirer outages:
                                 # host_sim/sim/faults.py)

Credentials (host_sim/sim/passengers.py): cpm (a genuine EMVCo CPM payment code from a phone), card (a
UnionPay, Visa or Mastercard IC card over NFC, the PN532 emulator on the board's nfc port), hce (a UnionPay
phone over NFC), ticket (scenic: a ticket the run signs, single or group; school: a pupil's pass or one not on the
roster; a school's runs alternate: to school, boarding along the stops and alighting at the last, and home,
the route backwards, boarding at the school and alighting where they boarded), ride (an SM2 or P-256
ride code; the run provisions the ride-code roots), paycode (a numeric payment code, authorised online),
forged (a CPM code whose cryptogram is false: the terminal accepts it offline, the issuer declines it),
denylisted (a card the fleet's deny list holds before the run starts: "card blocked"), expired (a CPM code
whose card expired), garbage (a line that is no credential).  Each tap's kind, time and code are drawn
from the seed.  Every mistake is refused with the file, the line and the key.
"""

import datetime
import re
import tomllib

from host_sim.emulators.modem import DIALECTS
from host_sim.sim import faults as fault_kinds
from host_sim.sim import passengers
from protocol import profile as profiles

CREDENTIALS = passengers.CREDENTIALS
BOARDS = ("virtual",)
UPLINKS = ("serial", "cellular")
FAULTS = fault_kinds.KINDS
UTC_OFFSET_S = profiles.DEFAULT_UTC_OFFSET
MAX_TERMINALS = 64  # full virtual boards on one machine; the county fleet is `sim fleet`'s

TABLES = {
    "scenario": {"name": str, "date": str, "seed": int},
    "terminals": {"name": str, "profile": str, "board": str, "uplink": str, "dialect": str,
                  "count": int},
    "timeline": {"runs": list},
    "stops": {"name": str, "travel_s": int, "dwell_s": int, "boardings": float, "zone": int},
    "passengers": {"boardings": float, "mix": dict, "rates": dict, "pupils": int, "off_roster": float,
                   "party": dict, "passback": float},
    "faults": {"kind": str, "terminal": str, "at": str, "until": str, "fault": str, "value": float},
    "profiles": {},  # [profiles.<profile>]: the profile's sections, checked by host_sim/sim/passengers.py
}
OPTIONAL = ("faults", "profiles")
ARRAYS = ("terminals", "stops", "faults")
REQUIRED = {"scenario": ("name", "date"), "terminals": ("name", "profile"), "timeline": ("runs",),
            "stops": ("name", "dwell_s"), "passengers": ("mix",), "faults": ("kind", "at")}


class ScenarioError(ValueError):
    """A scenario mistake: str() is "FILE:LINE: key: reason"."""


class _Where:
    """Finds the line of a key in the file: tomllib keeps no positions, the text does."""

    def __init__(self, path, text):
        self.path = path
        self.lines = text.splitlines()

    def line(self, table, index=None, key=None):
        header = re.compile(r"^\s*\[\[?\s*%s\s*\]\]?\s*(#.*)?$" % re.escape(table))
        any_header = re.compile(r"^\s*\[")
        seen = -1
        inside = False
        found = None
        for n, text in enumerate(self.lines, 1):
            if header.match(text):
                seen += 1
                inside = index is None or seen == index
                if inside and found is None:
                    found = n
                continue
            if any_header.match(text):
                inside = False
                continue
            if inside and key and re.match(r"^\s*%s\s*=" % re.escape(key), text):
                return n
        return found or 1

    def error(self, table, index, key, reason):
        name = table if index is None else "%s[%d]" % (table, index)
        if key:
            name += "." + key
        return ScenarioError("%s:%d: %s: %s" % (self.path, self.line(table, index, key), name, reason))


def _clock(text):
    """"HH:MM" -> seconds after local midnight, or None."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def _check_table(where, table, index, body):
    fields = TABLES[table]
    if not isinstance(body, dict):
        raise where.error(table, index, None, "must be a table")
    for key, value in body.items():
        if key not in fields:
            raise where.error(table, index, key, "unknown key (known: %s)" % ", ".join(fields))
        want = fields[key]
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            raise where.error(table, index, key, "must be %s, not %r" % (want.__name__, value))
        if want in (int, float) and value < 0:
            raise where.error(table, index, key, "must not be negative (%r)" % value)
    for key in REQUIRED[table]:
        if key not in body:
            raise where.error(table, index, key, "is missing")


def parse(path, text):
    """The checked scenario as a dict (see the module docstring); ScenarioError names file, line, key."""
    where = _Where(path, text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("%s: not TOML: %s" % (path, e)) from None
    for table in doc:
        if table not in TABLES:
            raise ScenarioError("%s:%d: %s: unknown table (known: %s)" % (
                path, where.line(table), table, ", ".join(TABLES)))
    for table in TABLES:
        if table not in doc:
            if table in OPTIONAL:
                continue
            raise ScenarioError("%s:1: %s: the table is missing" % (path, table))
        body = doc[table]
        if table == "profiles":
            if not isinstance(body, dict):
                raise where.error(table, None, None, "must be [profiles.<profile>] tables")
            continue
        if table in ARRAYS:
            if not isinstance(body, list) or not body and table != "faults":
                raise where.error(table, None, None, "must be one or more [[%s]] tables" % table)
            for i, item in enumerate(body):
                _check_table(where, table, i, item)
        else:
            if isinstance(body, list):
                raise where.error(table, None, None, "must be one [%s] table" % table)
            _check_table(where, table, None, body)
    return _meaning(where, doc)


def _meaning(where, doc):
    sc = doc["scenario"]
    try:
        day = datetime.date.fromisoformat(sc["date"])
    except ValueError:
        raise where.error("scenario", None, "date", "not a date YYYY-MM-DD: %r" % sc["date"]) from None
    midnight = int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp())
    midnight -= UTC_OFFSET_S
    terminals = []
    names = set()
    for i, t in enumerate(doc["terminals"]):
        if t["profile"] not in profiles.PROFILES:
            raise where.error("terminals", i, "profile", "no such profile %r (known: %s)"
                              % (t["profile"], ", ".join(profiles.PROFILES)))
        for key, known in (("board", BOARDS), ("uplink", UPLINKS)):
            if t.get(key, known[0]) not in known:
                raise where.error("terminals", i, key, "%r is not one of %s" % (t[key], ", ".join(known)))
        uplink = t.get("uplink", "serial")
        if uplink == "cellular" and t.get("dialect") not in DIALECTS:
            raise where.error("terminals", i, "dialect", "a cellular uplink needs dialect = one of %s%s"
                              % (", ".join(DIALECTS), ", not %r" % t["dialect"] if "dialect" in t else ""))
        if uplink != "cellular" and "dialect" in t:
            raise where.error("terminals", i, "dialect", "only a cellular uplink has a modem dialect")
        count = t.get("count", 1)
        if count < 1:
            raise where.error("terminals", i, "count", "must be at least 1")
        for n in range(1, count + 1):
            name = "%s-%d" % (t["name"], n)
            if name in names:
                raise where.error("terminals", i, "name", "terminal %s is named twice" % name)
            names.add(name)
            terminals.append({"name": name, "profile": t["profile"], "board": t.get("board", "virtual"),
                              "uplink": uplink})
            if uplink == "cellular":
                terminals[-1]["dialect"] = t["dialect"]
    if len(terminals) > MAX_TERMINALS:
        raise where.error("terminals", None, "count", "%d virtual boards is more than %d"
                          % (len(terminals), MAX_TERMINALS))
    runs = []
    for text in doc["timeline"]["runs"]:
        start = _clock(text) if isinstance(text, str) else None
        if start is None:
            raise where.error("timeline", None, "runs", "%r is not a time HH:MM" % (text,))
        runs.append(start)
    if not runs or runs != sorted(runs):
        raise where.error("timeline", None, "runs", "must be one or more times in order")
    route = sum(s.get("travel_s", 0) + s["dwell_s"] for s in doc["stops"])
    for a, b in zip(runs, runs[1:]):
        if a + route > b:
            raise where.error("timeline", None, "runs", "a run takes %d s: the run at %02d:%02d is not over "
                              "before the next starts" % (route, a // 3600, a // 60 % 60))
    if runs[-1] + route > 86400:
        raise where.error("timeline", None, "runs", "the last run ends after midnight")
    mix = doc["passengers"]["mix"]
    for key, weight in mix.items():
        if key not in CREDENTIALS:
            raise where.error("passengers", None, "mix", "unknown credential %r (known: %s)"
                              % (key, ", ".join(CREDENTIALS)))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise where.error("passengers", None, "mix", "weight of %s must be a number >= 0" % key)
    if not sum(mix.values()):
        raise where.error("passengers", None, "mix", "all weights are 0")
    default = doc["passengers"].get("boardings", 1.0)
    stops = [{"name": s["name"], "travel_s": s.get("travel_s", 0), "dwell_s": s["dwell_s"],
              "boardings": s.get("boardings", default)} for s in doc["stops"]]
    by_name = {t["name"]: t for t in terminals}
    day = (runs[0], runs[-1] + route)
    faults = [fault_kinds.parse(where, i, f, midnight, day, by_name, _clock)
              for i, f in enumerate(doc.get("faults", []))]
    out = {"name": sc["name"], "seed": sc.get("seed", 1), "midnight": midnight, "terminals": terminals,
           "runs": [midnight + r for r in runs], "stops": stops, "mix": dict(sorted(mix.items())),
           "faults": faults, "simulated_s": runs[-1] + route - runs[0]}
    passengers.extend(where, doc, out, where.error)
    return out


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError("%s: cannot read the scenario: %s" % (path, e)) from None
    return parse(path, text)
