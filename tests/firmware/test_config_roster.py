"""Roster bundles (fleet kind 7, protocol/roster.py) and the school and scenic profile sections through
firmware/config/receiver.py on both runtimes: a roster for the terminal's group is activated and read back
at boot; one with a duplicate pass, out of order, for another group, or a profile with an unknown field in
its school or scenic section is refused with its reason and what was active stays."""

import json
import struct

import pytest

from host_sim.tools import tickets
from protocol import fleet, roster
from tests.firmware.test_config_fleet import chunk, config_lines, make, offer, steps_run


@pytest.fixture(scope="module")
def keys():
    return {"authority": tickets.generate_key()}


def raw_roster(group, issuer, passes):
    """A roster body as written, unchecked and unsorted: the terminal must check it itself."""
    name = group.encode()
    out = bytes([len(name)]) + name + struct.pack(">HH", issuer, len(passes))
    return out + b"".join(pid + struct.pack(">BHH", days, first, last) for pid, days, first, last in passes)


def send(data, kind, version):
    return [("offer", offer(data, kind, version)), ("chunk", chunk(data, kind, version, 0))]


def test_rosters_and_school_profiles_checked_by_the_terminal(runtime, tmp_path, keys):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "group").write_text("school-3\n")
    a, b = (b"PUPIL001", 0x1F, 100, 200), (b"PUPIL002", 0x7F, 100, 200)
    good = make(keys["authority"], fleet.KIND_ROSTER, 1, raw_roster("school-3", 5, [a, b]))
    bad = [
        (raw_roster("school-3", 5, [a, a, b]), "pass 505550494c303031 is on the roster twice"),
        (raw_roster("school-3", 5, [b, a]), "passes are not in ascending order at 505550494c303031"),
        (raw_roster("school-9", 5, [a]), "roster for group school-9, this terminal is in school-3"),
        (raw_roster("school-3", 5, [(b"PUPIL001", 0, 100, 200)]), "pass 505550494c303031 has weekdays 0x00"),
        (raw_roster("school-3", 5, [(b"PUPIL001", 1, 200, 100)]), "ends on day 100 before it starts on day 200"),
        (raw_roster("school-3", 5, [a])[:-1], "does not hold 1 passes"),
    ]
    school = {"profile": "school", "group": "school-3", "school": {"product": 50}}
    profiles = [
        (dict(school, school={"product": 50, "bus_fare": 1}), "school: unknown field 'bus_fare'"),
        (dict(school, school={}), "school: product is missing"),
        (dict(school, school={"product": 50, "rescan_s": 7200}), "rescan_s 7200 is outside 0..3600"),
        (dict(school, profile="scenic", scenic={"passback": 60}), "scenic: unknown field 'passback'"),
        (dict(school, profile="scenic", scenic={"passback_s": -1}), "passback_s -1 is outside 0..86400"),
    ]
    steps = send(good, fleet.KIND_ROSTER, 1)
    for i, (body, _) in enumerate(bad):
        steps += send(make(keys["authority"], fleet.KIND_ROSTER, 10 + i, body), fleet.KIND_ROSTER, 10 + i)
    for i, (obj, _) in enumerate(profiles):
        data = make(keys["authority"], fleet.KIND_PROFILE, 10 + i, json.dumps(obj).encode())
        steps += send(data, fleet.KIND_PROFILE, 10 + i)
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), steps)
    assert out[1] == [True, [fleet.KIND_ROSTER, 1, len(good)]]
    for i, (_, reason) in enumerate(bad + profiles):
        got = out[3 + 2 * i]
        assert isinstance(got, str) and got.startswith("refused: ") and reason in got, (i, got)
    assert activated == [[7, "school-3", 5, 2]]
    assert boot["roster_version"] == 1 and boot["profile"] is None


def test_roster_lookup_by_date_and_weekday(runtime):
    day = 20833  # a Friday
    body = roster.body("s", 5, [(b"WEEKDAYS", 0x1F, day - 1, day + 1), (b"SATURDAY", 0x20, day, day + 7)])
    got = runtime.run(body_rides, body, [(5, b"WEEKDAYS", day), (5, b"WEEKDAYS", day + 1), (5, b"WEEKDAYS", day + 2),
                                         (5, b"SATURDAY", day), (5, b"SATURDAY", day + 1), (6, b"WEEKDAYS", day),
                                         (5, b"NOBODY00", day)])
    assert got == [roster.ON_ROSTER, roster.NOT_TODAY, roster.NOT_TODAY, roster.NOT_TODAY, roster.ON_ROSTER,
                   roster.NOT_LISTED, roster.NOT_LISTED]


def body_rides(body, cases):
    from protocol import roster

    r = roster.Roster(body)
    return [r.rides(issuer, pid, day) for issuer, pid, day in cases]


def test_bundle_make_refuses_a_duplicate_pass():
    with pytest.raises(roster.RosterError, match="on the roster twice"):
        roster.body("s", 5, [(b"PUPIL001", 1, 0, 1), (b"PUPIL001", 2, 0, 1)])
