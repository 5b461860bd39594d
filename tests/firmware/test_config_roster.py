"""Roster bundles (fleet kind 7, protocol/roster.py) and the school and scenic profile sections through
firmware/config/receiver.py on both runtimes: a roster for the terminal's group is activated and read back
at boot; one with a duplicate pass, out of order, for another group, or a profile with an unknown field in
its school or scenic section is refused with its reason and what was active stays."""

import hashlib
import json
import struct

import pytest

from host_sim.tools import bundle as host_bundle
from host_sim.tools import tickets
from protocol import bundle, fleet
from tests.firmware.helpers import body_steps

KEY = bytes(range(32))  # the device key


@pytest.fixture(scope="module")
def keys():
    return {"authority": tickets.generate_key()}


def make(key, kind, version, body):
    return host_bundle.sign(key, 1, kind, version, body, issued=1_800_000_000)


def offer(data, kind, version):
    digest = hashlib.sha256(data).digest()
    sig = bundle.signature(bundle.config_key(KEY), kind, version, len(data), digest)
    return {"kind": kind, "version": version, "size": len(data), "digest": digest, "signature": sig}


def chunk(data, kind, version, offset):
    return {"kind": kind, "version": version, "offset": offset, "data": data[offset:]}


def steps_run(runtime, tmp_path, lines, steps):
    """(answers, what on_activate got, what a booting terminal reads back): helpers.body_steps."""
    out, _, _, boot = runtime.run(body_steps, str(tmp_path), KEY, steps, [], lines)
    return out, boot.pop("activated"), boot


def config_lines(keys):
    return ["key 0 1 %0512x" % keys["authority"].public_key().public_numbers().n]


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
