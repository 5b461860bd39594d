"""The village bus's fares: the "bus" section of a profile bundle (protocol/profile.py) and the fare of a ride.

Pure functions on plain ints and the checked section, the same on the terminal and the host (which can
recompute any record's fare from its stops and rule, protocol/SPEC.md "Bus fares"):

    "bus": {"fare": "flat" | "zone" | "stage",
            "default_fen": 200,           flat: the fare; zone/stage: the fare when the stop is not known
            "fares_fen": [100, 150, 200],  zone/stage: fare by zones (stages) travelled, [0] within one
            "stops": [{"name": "Xiacun", "lat_e6": 30274100, "lon_e6": 120155000, "zone": 1}, ...],
                                           along the route; "stage" instead of "zone" for stage fares
            "radius_m": 150,               a GPS fix is at a stop within this distance of it
            "transfer": {"window_min": 60, "discount_fen": 100},   optional
            "daily_cap_rides": 4}          optional: at most this many rides a day are charged

Tap-on only: the fare is the one from the boarding stop to the farther end of the line, unless the
driver display chose the passenger's destination before the tap (then boarding -> destination).
"""

FLAT = "flat"
ZONE = "zone"
STAGE = "stage"
MODES = (FLAT, ZONE, STAGE)
MAX_FARE = 50000  # fen: 500 yuan, far above any county bus fare: a larger one is a typo
MAX_STOPS = 64
MAX_NAME = 24
MAX_TABLE = 32
UNKNOWN = 0xFF  # a stop index that is not known (record extension EXT_BUS_STOPS)

# the fare rule a ride was charged by (record extension EXT_BUS_RULE)
RULE_FARE = 0  # the route's fare for the stops
RULE_DEFAULT = 1  # the stop was not known (no GPS fix, no stop input): the configured default fare
RULE_TRANSFER = 2  # within the transfer window of this credential's previous ride: discounted
RULE_CAPPED = 3  # the daily cap was reached: accepted at 0

# where the boarding stop came from
SOURCE_NONE = 0
SOURCE_GPS = 1
SOURCE_DRIVER = 2


def _error(reason):
    from protocol import profile  # loaded already: profile.parse is the only caller of check()

    return profile.ProfileError("bus: " + reason)


def check(bus, body):
    """Checks the "bus" section of a profile `body` (profile.SECTIONS); raises ProfileError with a reason."""
    from protocol import profile  # loaded already: profile.parse is the only caller

    if body.get("profile") != "bus":
        raise _error("a bus section in a %s profile" % body.get("profile"))
    if not isinstance(bus, dict):
        raise _error("the section is not an object")
    mode = bus.get("fare")
    if mode not in MODES:
        raise _error("fare %r unknown (flat, zone or stage)" % (mode,))
    profile.integer(bus, "default_fen", 0, MAX_FARE, where="bus: ")
    profile.integer(bus, "radius_m", 10, 5000, 150, where="bus: ")
    profile.integer(bus, "daily_cap_rides", 1, 50, 50, where="bus: ")
    stops = bus.get("stops", [])
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise _error("stops must be a list of at most %d stops" % MAX_STOPS)
    band = ZONE if mode == ZONE else STAGE
    last_stage = 0
    for i, stop in enumerate(stops):
        if not isinstance(stop, dict):
            raise _error("stop %d is not an object" % i)
        name = stop.get("name", "")
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise _error("stop %d name is not a text of at most %d characters" % (i, MAX_NAME))
        if "lat_e6" in stop or "lon_e6" in stop:
            profile.integer(stop, "lat_e6", -90000000, 90000000, where="bus: ")
            profile.integer(stop, "lon_e6", -180000000, 180000000, where="bus: ")
        if mode != FLAT:
            n = profile.integer(stop, band, 0, MAX_TABLE - 1, where="bus: ")
            if mode == STAGE:
                if n < last_stage:
                    raise _error("stop %d stage %d comes after stage %d" % (i, n, last_stage))
                last_stage = n
    if mode != FLAT:
        if len(stops) < 2:
            raise _error("%s fares need at least two stops" % mode)
        table = bus.get("fares_fen")
        if not isinstance(table, list) or not 0 < len(table) <= MAX_TABLE:
            raise _error("fares_fen must be a list of 1..%d fares" % MAX_TABLE)
        for i in range(len(table)):
            if not isinstance(table[i], int) or isinstance(table[i], bool) or not 0 <= table[i] <= MAX_FARE:
                raise _error("fares_fen[%d] %r is outside 0..%d" % (i, table[i], MAX_FARE))
        bands = [s[band] for s in stops]
        span = max(bands) - min(bands) + 1
        if span > len(table):
            raise _error("fares_fen has %d fares, the stops span %d %ss" % (len(table), span, band))
    transfer = bus.get("transfer")
    if transfer is not None:
        if not isinstance(transfer, dict):
            raise _error("transfer is not an object")
        profile.integer(transfer, "window_min", 1, 240, where="bus: ")
        profile.integer(transfer, "discount_fen", 0, MAX_FARE, where="bus: ")


def fare(bus, board, dest=None):
    """(fare in fen, rule) of a ride boarding at stop index `board` (None: not known) to `dest` (None: the
    farther end of the line)."""
    default = bus["default_fen"]
    mode = bus["fare"]
    if mode == FLAT:
        return default, RULE_FARE
    stops = bus["stops"]
    if board is None or not 0 <= board < len(stops):
        return default, RULE_DEFAULT
    band = ZONE if mode == ZONE else STAGE
    table = bus["fares_fen"]
    here = stops[board][band]
    if dest is not None and 0 <= dest < len(stops):
        return table[abs(stops[dest][band] - here)], RULE_FARE
    return max(table[abs(stops[0][band] - here)], table[abs(stops[-1][band] - here)]), RULE_FARE


def charge(bus, base, rule, now, day, last_s, last_day, paid):
    """(amount, rule) a credential pays for a ride of fare `base`: 0 once it paid `daily_cap_rides` rides
    on `day`; less the transfer discount within its window of its previous ride (`last_s`, 0: none).
    `last_day`, `paid`: the day of the credential's counters and the rides it paid that day."""
    cap = bus.get("daily_cap_rides")
    if cap is not None and last_day == day and paid >= cap:
        return 0, RULE_CAPPED
    transfer = bus.get("transfer")
    if transfer is not None and last_s and 0 <= now - last_s <= transfer["window_min"] * 60:
        return max(0, base - transfer["discount_fen"]), RULE_TRANSFER
    return base, rule


def nearest(bus, lat_e6, lon_e6):
    """The index of the stop nearest to a fix, if within `radius_m`; None otherwise.  Distances on the
    local plane (equirectangular, in integer micro-degrees): exact enough over a county's few kilometres."""
    radius = bus.get("radius_m", 150)
    # one micro-degree of latitude is 0.111 m; of longitude 0.111 m x cos(latitude)
    cos_q = _cos_q10(lat_e6)
    best = None
    best_d2 = 0
    stops = bus.get("stops", ())
    for i in range(len(stops)):
        s = stops[i]
        if "lat_e6" not in s:
            continue
        dy = (s["lat_e6"] - lat_e6) * 111 // 1000
        dx = (s["lon_e6"] - lon_e6) * 111 * cos_q // 1024000
        d2 = dx * dx + dy * dy
        if best is None or d2 < best_d2:
            best, best_d2 = i, d2
    if best is None or best_d2 > radius * radius:
        return None
    return best


def _cos_q10(lat_e6):
    """cos(latitude) x 1024, from a table of 5-degree steps (no floating point on the terminal)."""
    a = abs(lat_e6) // 1000000
    if a >= 90:
        return 0
    i = a // 5
    lo, hi = _COS[i], _COS[i + 1]
    return lo + (hi - lo) * (abs(lat_e6) - i * 5000000) // 5000000


_COS = (1024, 1020, 1008, 989, 962, 928, 887, 839, 784, 724, 658, 587, 512, 433, 350, 265, 178, 89, 0)
