"""protocol/busfare.py on both runtimes: flat, zone and stage fares between stops (tap-on only: to the
farther end of the line unless the driver chose a destination), the default fare when the stop is not
known, the transfer discount inside its window, the daily cap, and the nearest stop within the radius."""

ROUTE = [{"name": "A", "lat_e6": 30270000, "lon_e6": 120150000, "zone": 1, "stage": 0},
         {"name": "B", "lat_e6": 30280000, "lon_e6": 120160000, "zone": 1, "stage": 1},
         {"name": "C", "lat_e6": 30290000, "lon_e6": 120170000, "zone": 2, "stage": 2},
         {"name": "D", "lat_e6": 30300000, "lon_e6": 120180000, "zone": 3, "stage": 3}]


def body_fares(route):
    from protocol import busfare

    def strip(key):
        return [{k: v for k, v in s.items() if k not in ("zone", "stage") or k == key} for s in route]

    flat = {"fare": "flat", "default_fen": 200}
    zone = {"fare": "zone", "default_fen": 500, "fares_fen": [200, 300, 400], "stops": strip("zone")}
    stage = {"fare": "stage", "default_fen": 500, "fares_fen": [100, 150, 200, 250], "stops": strip("stage")}
    out = []
    for bus in (flat, zone, stage):
        out.append([list(busfare.fare(bus, b, d)) for b, d in ((0, None), (1, None), (3, None), (1, 2), (2, 0),
                                                                 (None, None), (9, None))])
    return out


def test_fares_between_stops(runtime):
    flat, zone, stage = runtime.run(body_fares, ROUTE)
    assert flat == [[200, 0]] * 7
    # zone: A,B in 1, C in 2, D in 3; to the farther end without a destination
    assert zone == [[400, 0], [400, 0], [400, 0], [300, 0], [300, 0], [500, 1], [500, 1]]
    # stage: A..D are stages 0..3
    assert stage == [[250, 0], [200, 0], [250, 0], [150, 0], [200, 0], [500, 1], [500, 1]]


def body_charge(cases):
    from protocol import busfare

    bus = {"fare": "flat", "default_fen": 200, "transfer": {"window_min": 60, "discount_fen": 150},
           "daily_cap_rides": 2}
    return [list(busfare.charge(bus, 200, 0, *case)) for case in cases]


def test_transfer_and_daily_cap(runtime):
    now, day = 1_800_000_000, 20833
    got = runtime.run(body_charge, [
        (now, day, 0, 0, 0),  # never seen: full fare
        (now, day, now - 3599, day, 1),  # inside the hour: discounted
        (now, day, now - 3601, day, 1),  # just outside
        (now, day, now - 60, day, 2),  # two paid today: capped, even inside the transfer window
        (now, day, now - 60, day - 1, 5),  # yesterday's count does not cap today
    ])
    assert got == [[200, 0], [50, 2], [200, 0], [0, 3], [50, 2]]


def body_nearest(route, fixes):
    from protocol import busfare

    bus = {"fare": "flat", "default_fen": 1, "radius_m": 150, "stops": route}
    return [busfare.nearest(bus, lat, lon) for lat, lon in fixes]


def test_nearest_stop_within_the_radius(runtime):
    got = runtime.run(body_nearest, ROUTE, [
        (30270000, 120150000),  # at A
        (30280900, 120160000),  # 100 m north of B
        (30281500, 120160000),  # 167 m north of B: between stops
        (30290000, 120171400),  # 135 m east of C (cos 30.29 deg: 1 micro-degree of longitude ~ 0.096 m)
        (30290000, 120171700),  # 164 m east of C
        (-30270000, 120150000),  # the other hemisphere
    ])
    assert got == [0, 1, None, 2, None, None]


def test_the_fleet_cap_on_a_profile_body_is_the_profiles():
    from protocol import fleet, profile

    assert fleet.MAX_BODY[fleet.KIND_PROFILE] == profile.MAX_BODY
