"""Profile bundles (fleet kind 6, protocol/profile.py) through firmware/config/receiver.py on both runtimes:
activated only when addressed to the terminal's group (/flash/config/group), read back at boot; one for
another group, for a terminal of no group, with an unknown product, a missing field or an out-of-range
fare or stop is refused with its reason and the active profile stays."""

import json

import pytest

from host_sim.tools import bundle as host_bundle
from host_sim.tools import tickets
from protocol import fleet
from tests.firmware.helpers import chunk, config_lines, make, offer, steps_run

BUS = {"profile": "bus", "group": "route-7",
       "bus": {"fare": "stage", "default_fen": 300, "fares_fen": [100, 200, 300],
               "stops": [{"name": "A", "stage": 0}, {"name": "B", "stage": 1}, {"name": "C", "stage": 2}]}}


@pytest.fixture(scope="module")
def keys():
    return {"authority": tickets.generate_key()}


def profile_bundle(keys, version, obj):
    body = json.dumps(obj).encode()  # unchecked: the terminal must check it itself
    return make(keys["authority"], fleet.KIND_PROFILE, version, body)


def send(data, version):
    return [("offer", offer(data, fleet.KIND_PROFILE, version)), ("chunk", chunk(data, fleet.KIND_PROFILE, version, 0))]


def with_group(tmp_path, name):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "group").write_text(name + "\n")


def test_a_profile_for_the_terminals_group_is_activated_and_read_at_boot(runtime, tmp_path, keys):
    with_group(tmp_path, "route-7")
    data = profile_bundle(keys, 3, BUS)
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), send(data, 3))
    assert out[1] == [True, [fleet.KIND_PROFILE, 3, len(data)]]
    assert activated == [[6, "bus", "route-7"]]
    assert boot["profile"]["bus"]["fares_fen"] == [100, 200, 300] and boot["profile_version"] == 3


def test_bad_profiles_are_refused_with_a_reason_and_the_active_one_stays(runtime, tmp_path, keys):
    with_group(tmp_path, "route-7")

    def bus(**changes):
        section = dict(BUS["bus"], **changes)
        return dict(BUS, bus=section)

    cases = [
        (dict(BUS, group="route-9"), "profile for group route-9, this terminal is in route-7"),
        (dict(BUS, profile="ferry"), "unknown profile 'ferry'"),
        (bus(default_fen=None), "bus: default_fen is missing"),
        (bus(fares_fen=[100, 200, 50001]), "bus: fares_fen[2] 50001 is outside 0..50000"),
        (bus(fares_fen=[100, 200]), "bus: fares_fen has 2 fares, the stops span 3 stages"),
        (bus(stops=[{"stage": 0}, {"stage": 2}, {"stage": 1}]), "bus: stop 2 stage 1 comes after stage 2"),
        (bus(stops=[{"stage": 0}, {"stage": 99}]), "bus: stage 99 is outside 0..31"),
        (bus(stops=[{"stage": 0, "lat_e6": 91000000, "lon_e6": 0}, {"stage": 1}]), "bus: lat_e6 91000000"),
        (bus(fare="distance"), "bus: fare 'distance' unknown"),
    ]
    for case in cases:
        if case[0]["bus"].get("default_fen", 0) is None:
            del case[0]["bus"]["default_fen"]
    good = profile_bundle(keys, 2, BUS)
    steps = send(good, 2)
    for i, (obj, _) in enumerate(cases):
        steps += send(profile_bundle(keys, 10 + i, obj), 10 + i)
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), steps)
    assert out[1] == [True, [6, 2, len(good)]]
    for i, (_, reason) in enumerate(cases):
        got = out[3 + 2 * i]
        assert isinstance(got, str) and got.startswith("refused: ") and reason in got, (i, got)
    assert activated == [[6, "bus", "route-7"]]
    assert boot["profile_version"] == 2 and boot["profile"]["group"] == "route-7"


def test_a_terminal_of_no_group_takes_no_profile(runtime, tmp_path, keys):
    data = profile_bundle(keys, 1, BUS)
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), send(data, 1))
    assert out[1] == "refused: profile for group route-7, this terminal has no group"
    assert activated == [] and boot["profile"] is None and boot["profile_version"] == 0


def test_bundle_make_refuses_a_bad_profile_before_signing(tmp_path):
    with pytest.raises(fleet.FleetError, match="unknown section 'fare'"):
        host_bundle.profile_body(json.dumps({"profile": "bus", "group": "g", "fare": {}}))
    body = host_bundle.profile_body(json.dumps(BUS, indent=2))
    assert b"\n" not in body and fleet.profile_body(body)["group"] == "route-7"
