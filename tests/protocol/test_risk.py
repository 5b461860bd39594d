"""protocol/risk.py on both runtimes: a profile's "risk" section is checked whole (known limits, ranges,
first-ride caps never looser than the others), filled with the defaults, and a terminal without a profile
or section gets the documented defaults."""


def body_parse(bodies):
    from protocol import profile

    out = []
    for body in bodies:
        try:
            out.append(["ok", profile.parse(body)["risk"]])
        except profile.ProfileError as e:
            out.append(["refused", str(e)])
    return out


def body_limits(profiles, names):
    from protocol import risk

    return [[risk.limit(p, n) for n in names] for p in profiles]


def head(risk):
    return b'{"profile": "bus", "group": "route-7", "risk": ' + risk + b"}"


def test_risk_sections_accepted_filled_and_refused(runtime):
    got = runtime.run(body_parse, [
        head(b"{}"),
        head(b'{"dup_window_s": 10, "max_rides": 8, "new_max_rides": 8, "max_fen": 0, "new_max_fen": 0}'),
        head(b'{"dup_window_s": 10, "max_rides": 8, "new_max_rides": 9}'),
        head(b'{"max_rides": 8, "new_max_rides": 0}'),
        head(b'{"dup_window_s": -1}'),
        head(b'{"dup_window_s": 3601}'),
        head(b'{"max_fen": "100"}'),
        head(b'{"max_rides": true}'),
        head(b'{"daily_cap": 3}'),
        head(b"[]"),
    ])
    assert got[0] == ["ok", {"dup_window_s": 60, "max_rides": 20, "max_fen": 10000, "new_max_rides": 5,
                             "new_max_fen": 2000}]
    assert got[1] == ["ok", {"dup_window_s": 10, "max_rides": 8, "max_fen": 0, "new_max_rides": 8, "new_max_fen": 0}]
    refused = [g[1] for g in got[2:]]
    assert [g[0] for g in got[2:]] == ["refused"] * 8
    assert "new_max_rides 9 is looser than max_rides 8" in refused[0]
    assert "new_max_rides 0 is looser than max_rides 8" in refused[1]
    assert "dup_window_s -1 is outside 0..3600" in refused[2]
    assert "dup_window_s 3601" in refused[3]
    assert "max_fen '100'" in refused[4]
    assert "max_rides True" in refused[5]
    assert "unknown limit 'daily_cap'" in refused[6]
    assert "risk must be an object" in refused[7]


def test_a_terminal_without_a_profile_gets_the_defaults(runtime):
    names = ["dup_window_s", "max_rides", "max_fen", "new_max_rides", "new_max_fen"]
    got = runtime.run(body_limits, [None, {"profile": "bus"}, {"risk": {"max_rides": 3}}], names)
    assert got == [[60, 20, 10000, 5, 2000], [60, 20, 10000, 5, 2000], [60, 3, 10000, 5, 2000]]
