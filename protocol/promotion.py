"""The county's promotions (随机立减): a random instant discount on a fare, drawn on the terminal and
audited by the host (protocol/SPEC.md "Promotions").

The "promotions" section of a profile (protocol/profile.py) is a list of programmes:

    {"id": 7,                          1..65535, unique: the record names it (EXT_PROMO_ID)
     "kinds": ["qr_cpm", "ride_code"], credential kinds it discounts (KINDS)
     "profiles": ["bus"],              optional: the products it runs on (default: every one)
     "chance_ppm": 100000,             probability of a discount, parts per million (10 %)
     "discount_fen": 50,               a fixed discount, or instead
     "discount_pct": 20, "max_fen": 100,   a percentage of the fare, at most max_fen
     "terminal_daily_fen": 2000,       what one terminal may give away a day (kept on the terminal)
     "programme_daily_fen": 100000,    what the whole programme may give away a day (reconciled by the host)
     "from": "2026-12-01", "until": "2026-12-31"}   local dates (the profile's utc_offset_s), inclusive

A discount never exceeds the fare.  The draw is HMAC-SHA256 under a key derived from the terminal's device
key (the host holds that key; the profile, readable by anyone with the bundle, holds none) over the
record's own fields, so the host recomputes it from the record alone:

    draw = first 4 bytes, big-endian, of HMAC(key, pid u16 | terminal (8) | seq u32 | time u32 | kind u8 |
                                               fare u32 | token (16))    (little-endian fields)
    granted when draw * 1 000 000 >> 32 < chance_ppm

Contactless cards and numeric payment codes are not eligible: the card signs, or the issuer authorises
online, the full fare before the record (and so its sequence number) exists.  Pure functions on both runtimes.
"""

import struct

from protocol import crypto, dates, record

MAX_PROGRAMMES = 8
MAX_FEN = 100000  # 1 000 yuan: a larger discount or budget is a typo
MAX_BUDGET = 100000000
PPM = 1000000
KEY_LABEL = b"zf1 promo"

KINDS = {"qr_cpm": record.KIND_QR_CPM, "ride_code": record.KIND_RIDE_CODE}
# kinds a programme may not name, and why
NOT_ELIGIBLE = {"contactless": "a contactless card signs the full fare before the draw",
                "payment_code": "a payment code is authorised online for the full fare before the draw"}
FIELDS = ("id", "kinds", "profiles", "chance_ppm", "discount_fen", "discount_pct", "max_fen",
          "terminal_daily_fen", "programme_daily_fen", "from", "until")

# a compiled programme (programmes()): a tuple indexed by these
ID = 0
KIND_SET = 1
PROFILE_SET = 2
CHANCE = 3
FIXED = 4
PCT = 5
CAP = 6
TERMINAL_DAILY = 7
PROGRAMME_DAILY = 8
FIRST_DAY = 9
LAST_DAY = 10

EXT_PROMO_ID = record.EXT_PROMO_ID
EXT_PROMO_DISCOUNT = record.EXT_PROMO_DISCOUNT
EXT_PROMO_DRAW = record.EXT_PROMO_DRAW

_DRAW = "<H8sIIBI16s"


def _error(reason):
    from protocol import profile  # loaded already: profile.parse is the only caller of check()

    return profile.ProfileError("promotions: " + reason)


def day_of(text):
    """Days since 1970 of a "YYYY-MM-DD" date; None when it is not one."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        y, m, d = int(text[:4]), int(text[5:7]), int(text[8:])
    except ValueError:
        return None
    if not (2000 <= y <= 2099 and 1 <= m <= 12 and 1 <= d <= 31):
        return None
    n = dates.days(y, m, d)
    return n if dates.civil(n * 86400) == (y, m, d) else None


def _names(p, name, known, default):
    value = p.get(name, default)
    if not isinstance(value, list) or not value:
        raise _error("%s must be a non-empty list" % name)
    for v in value:
        if v not in known:
            why = NOT_ELIGIBLE.get(v) if name == "kinds" else None
            if why:
                raise _error("kind %r is not eligible: %s" % (v, why))
            raise _error("unknown %s %r (known: %s)" % (name[:-1], v, ", ".join(sorted(known))))
    return value


def compile_one(p):
    """The compiled tuple of one programme dict; raises ProfileError with a reason."""
    from protocol import profile

    if not isinstance(p, dict):
        raise _error("a programme is not an object")
    for key in p:
        if key not in FIELDS:
            raise _error("unknown field %r" % key)
    pid = profile.integer(p, "id", 1, 0xFFFF, where="promotions: ")
    kinds = _names(p, "kinds", KINDS, None)
    profiles = _names(p, "profiles", profile.PROFILES, list(profile.PROFILES))
    chance = profile.integer(p, "chance_ppm", 1, PPM, where="promotions: ")
    if ("discount_fen" in p) == ("discount_pct" in p):
        raise _error("programme %d needs discount_fen or discount_pct, not both" % pid)
    fixed = profile.integer(p, "discount_fen", 1, MAX_FEN, where="promotions: ") if "discount_fen" in p else 0
    pct = profile.integer(p, "discount_pct", 1, 100, where="promotions: ") if "discount_pct" in p else 0
    if not pct and "max_fen" in p:
        raise _error("programme %d: max_fen goes with discount_pct only" % pid)
    cap = profile.integer(p, "max_fen", 1, MAX_FEN, where="promotions: ") if pct else 0
    terminal_daily = profile.integer(p, "terminal_daily_fen", 1, MAX_BUDGET, where="promotions: ")
    programme_daily = profile.integer(p, "programme_daily_fen", 1, MAX_BUDGET, where="promotions: ")
    if terminal_daily > programme_daily:
        raise _error("programme %d: terminal_daily_fen is over programme_daily_fen" % pid)
    first = day_of(p.get("from"))
    last = day_of(p.get("until"))
    if first is None or last is None:
        raise _error("programme %d: from and until must be dates YYYY-MM-DD" % pid)
    if last < first:
        raise _error("programme %d ends before it starts" % pid)
    return (pid, tuple(KINDS[k] for k in kinds), tuple(profiles), chance, fixed, pct, cap, terminal_daily,
            programme_daily, first, last)


def programmes(section):
    """The compiled programmes of a "promotions" section, in its order; raises ProfileError."""
    if not isinstance(section, list) or not 0 < len(section) <= MAX_PROGRAMMES:
        raise _error("a list of 1..%d programmes" % MAX_PROGRAMMES)
    out = []
    for p in section:
        c = compile_one(p)
        for seen in out:
            if seen[ID] == c[ID]:
                raise _error("programme id %d twice" % c[ID])
        out.append(c)
    return out


def check(section, body):
    """Checks the "promotions" section of a profile `body` (profile.SECTIONS); raises ProfileError."""
    programmes(section)


def applies(p, product, kind, day):
    """True if compiled programme p discounts a `kind` tap on a `product` terminal on local `day`."""
    return p[FIRST_DAY] <= day <= p[LAST_DAY] and kind in p[KIND_SET] and product in p[PROFILE_SET]


def discount_of(p, fare):
    """The discount programme p gives on `fare` fen: never more than the fare."""
    d = p[FIXED] if p[FIXED] else min(fare * p[PCT] // 100, p[CAP])
    return min(d, fare)


def key_of(device_key):
    """The draw key: derived from the terminal's device key, which the host holds too."""
    return crypto.derive(device_key, KEY_LABEL, 32)


def draw(key, pid, terminal, seq, time_s, kind, fare, token):
    """The draw of programme `pid` for a record (its fields; `fare` before any discount): a u32."""
    msg = struct.pack(_DRAW, pid, bytes(terminal), seq, time_s, kind, fare, bytes(token))
    mac = crypto.hmac_sha256(key, msg)
    return mac[0] << 24 | mac[1] << 16 | mac[2] << 8 | mac[3]


def granted(value, chance_ppm):
    """True when a draw wins a programme of chance_ppm: the draw scaled to 0..999 999 is below it."""
    return (value * PPM) >> 32 < chance_ppm


def extensions(pid, discount, value):
    """The record extensions of a granted discount."""
    return [(EXT_PROMO_ID, struct.pack("<H", pid)), (EXT_PROMO_DISCOUNT, struct.pack("<I", discount)),
            (EXT_PROMO_DRAW, struct.pack("<I", value))]


def of_record(rec):
    """(promotion id, discount, draw) of a decoded record (record.decode), or None without one; a
    malformed one raises ValueError."""
    ext = rec["ext"]
    pid = ext.get(EXT_PROMO_ID)
    if pid is None:
        return None
    discount = ext.get(EXT_PROMO_DISCOUNT, b"")
    value = ext.get(EXT_PROMO_DRAW, b"")
    if len(pid) != 2 or len(discount) != 4 or len(value) != 4:
        raise ValueError("promotion extensions of the wrong size")
    return struct.unpack("<H", pid)[0], struct.unpack("<I", discount)[0], struct.unpack("<I", value)[0]


def audit(key, rec, p, product, day):
    """Why the discount in record `rec` (decoded) was not the draw's to give, or None when it was:
    `p` the compiled programme it names (None: unknown), `product` the terminal's profile, `day` the
    record's local day."""
    got = of_record(rec)
    if got is None:
        return None
    pid, discount, value = got
    if p is None:
        return "unknown programme %d" % pid
    fare = rec["amount"] + discount
    if draw(key, pid, rec["terminal"], rec["seq"], rec["time"], rec["kind"], fare, rec["token"]) != value:
        return "draw does not match the record"
    if not granted(value, p[CHANCE]):
        return "draw did not grant a discount"
    if not applies(p, product, rec["kind"], day):
        return "programme does not apply to this tap"
    if discount != discount_of(p, fare):
        return "discount %d is not the programme's %d" % (discount, discount_of(p, fare))
    return None
