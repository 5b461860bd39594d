"""protocol/profile.py on both runtimes: the envelope of a profile bundle is checked whole (product,
group, time zone, no unknown section) and "today" follows the profile's time zone."""


def body_parse(bodies):
    from protocol import profile

    out = []
    for body in bodies:
        try:
            got = profile.parse(body)
            out.append(["ok", got["profile"], got["group"], got["utc_offset_s"]])
        except profile.ProfileError as e:
            out.append(["refused", str(e)])
    return out


def body_local_day(cases):
    from protocol import profile

    return [profile.local_day(None if offset is None else {"utc_offset_s": offset}, t) for offset, t in cases]


def test_envelope_accepted_and_refused(runtime):
    got = runtime.run(body_parse, [
        b'{"profile": "bus", "group": "route-7"}',
        b'{"profile": "scenic", "group": "lake", "utc_offset_s": 0}',
        b'{"profile": "ferry", "group": "g"}',
        b'{"profile": "bus"}',
        b'{"profile": "bus", "group": ""}',
        b'{"profile": "bus", "group": "' + b"x" * 33 + b'"}',
        b'{"profile": "bus", "group": "g", "utc_offset_s": 99999}',
        b'{"profile": "bus", "group": "g", "utc_offset_s": true}',
        b'{"profile": "bus", "group": "g", "fares": {}}',
        b"[1, 2]",
        b"\xff\xfe",
        b"{" + b" " * 5000 + b"}",
    ])
    assert got[0] == ["ok", "bus", "route-7", 28800]
    assert got[1] == ["ok", "scenic", "lake", 0]
    assert [g[0] for g in got[2:]] == ["refused"] * 10
    assert "unknown profile 'ferry'" in got[2][1]
    assert "group" in got[3][1] and "group" in got[4][1] and "group" in got[5][1]
    assert "utc_offset_s" in got[6][1] and "utc_offset_s" in got[7][1]
    assert "unknown section 'fares'" in got[8][1]
    assert "over 4096" in got[11][1]


def test_local_day_follows_the_time_zone(runtime):
    midnight_beijing = 1764777600  # 2025-12-04 00:00 UTC+8
    got = runtime.run(body_local_day, [(None, midnight_beijing - 1), (None, midnight_beijing), (0, midnight_beijing)])
    assert got[1] == got[0] + 1
    assert got[2] == got[0]
