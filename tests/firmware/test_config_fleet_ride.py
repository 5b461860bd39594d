"""Fleet bundle kind 5, revoked ride-code issuers, on both runtimes: a signed bundle parses to its list
(protocol/fleet.py), the terminal's streaming reader (firmware/config/fleet.py) gives the same set, and
malformed bodies are refused with a reason; the builder refuses more than the cap; `bundle make
ride-revoked` signs one."""

import io

import pytest

from host_sim.tools import bundle, tickets
from protocol import fleet


@pytest.fixture(scope="module")
def authority():
    return tickets.generate_key()


def body_parse(key_line, data):
    import io

    from firmware.config import fleet as active
    from protocol import fleet, ticket

    ring = ticket.Keyring()
    ring.load_line(key_line)
    out = []
    try:
        got = fleet.parse(data, ring)
        out.append(sorted(list(r) for r in got["ride_revoked"]))
    except fleet.FleetError as e:
        out.append(str(e))
    f = io.BytesIO(data)
    try:
        kind, _, b, version, _ = active.read_head(f, len(data))
        out.append([kind, version, sorted(list(r) for r in active.read_body(f, kind, b, bytearray(259)))])
    except fleet.FleetError as e:
        out.append(str(e))
    return out


def test_revoked_ride_issuers_bundle(runtime, authority):
    line = tickets.keyring_line(authority, fleet.AUTHORITY, 1)
    data = bundle.sign(authority, 1, fleet.KIND_RIDE_REVOKED, 3, bundle.ride_revoked_body([(11, 1), (12, 2)]))
    assert runtime.run(body_parse, line, data) == [[[11, 1], [12, 2]], [fleet.KIND_RIDE_REVOKED, 3, [[11, 1], [12, 2]]]]
    empty = bundle.sign(authority, 1, fleet.KIND_RIDE_REVOKED, 4, bundle.ride_revoked_body([]))
    assert runtime.run(body_parse, line, empty) == [[], [fleet.KIND_RIDE_REVOKED, 4, []]]
    bad = bundle.sign(authority, 1, fleet.KIND_RIDE_REVOKED, 5, b"\x02\x00\x0b\x01")  # says 2, holds 1
    got = runtime.run(body_parse, line, bad)
    assert all("ride revocation list of 4 bytes is malformed" in g for g in got), got


def test_builder_and_show(authority):
    with pytest.raises(fleet.FleetError):
        bundle.ride_revoked_body([(i, 1) for i in range(fleet.MAX_RIDE_REVOKED + 1)])
    data = bundle.sign(authority, 1, fleet.KIND_RIDE_REVOKED, 1, bundle.ride_revoked_body([(11, 1)]))
    assert bundle.show(data)["ride_revoked"] == ["11:1"]
    assert len(io.BytesIO(data).read()) == fleet.HEAD + 4 + fleet.SIG


def test_bundle_make_ride_revoked_command(tmp_path):
    import json
    import subprocess
    import sys

    from host_sim.paths import ROOT

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "host_sim", "bundle", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    key = str(tmp_path / "authority.pem")
    cli("keygen", "--key", key)
    out = str(tmp_path / "r.zfb")
    got = cli("make", "ride-revoked", "--key", key, "--version", "2", "--out", out, "--revoke", "11:1",
              "--revoke", "12:2")
    assert (got["kind"], got["version"], got["ride_revoked"]) == ("ride-revoked", 2, ["11:1", "12:2"])
    shown = cli("show", out, "--config-keys", key + ".pub")
    assert shown["signature"] == "ok"
