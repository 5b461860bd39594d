"""Profile bundles on the host: `bundle make profile` signs a checked profile and `bundle show` prints it;
the collector offers each terminal the newest profile of the group provisioning registered for it, and
none to a terminal of no group or of another group."""

import json
import os

from host_sim.backend import backoffice, host_session
from host_sim.tools import bundle as fleet_bundles
from protocol import fleet
from tests.host_sim.helpers import TERMINAL, ListeningTerminal, bundle_cli, registered


def profile(group, fen):
    return {"profile": "bus", "group": group, "bus": {"fare": "flat", "default_fen": fen}}


def test_make_and_show_a_profile(tmp_path):
    key = str(tmp_path / "a.pem")
    assert bundle_cli("keygen", "--key", key)[0] == 0
    src = tmp_path / "route-7.json"
    src.write_text(json.dumps(profile("route-7", 250), indent=2))
    out = str(tmp_path / "p.zfb")
    code, stdout, stderr = bundle_cli("make", "profile", "--key", key, "--version", "4", "--profile", str(src),
                                      "--out", out)
    assert code == 0, stderr
    code, stdout, _ = bundle_cli("show", out, "--config-keys", key + ".pub")
    shown = json.loads(stdout)
    assert shown["kind"] == "profile" and shown["version"] == 4 and shown["signature"] == "ok"
    assert shown["profile"]["bus"] == {"fare": "flat", "default_fen": 250}
    src.write_text(json.dumps(dict(profile("route-7", 250), profile="tram")))
    code, stdout, stderr = bundle_cli("make", "profile", "--key", key, "--version", "5", "--profile", str(src),
                                      "--out", out)
    assert code == 1
    assert stderr.strip() == "bundle: profile refused: unknown profile 'tram' (known: bus, school, scenic)"
    code, _, stderr = bundle_cli("make", "profile", "--key", key, "--version", "5", "--out", out)
    assert code != 0 and "--profile" in stderr


def test_the_collector_offers_the_newest_profile_of_the_terminals_group(tmp_path):
    store = registered(tmp_path)
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    fleet_bundles.keygen(str(tmp_path / "a.pem"), 1)
    signer, kid = fleet_bundles.load_signer(str(tmp_path / "a.pem"))
    for name, group, version, fen in (("r7-1", "route-7", 1, 200), ("r7-3", "route-7", 3, 300),
                                      ("r9-5", "route-9", 5, 900)):
        body = fleet_bundles.profile_body(json.dumps(profile(group, fen)))
        (shelf / (name + ".zfb")).write_bytes(fleet_bundles.sign(signer, kid, fleet.KIND_PROFILE, version, body))
    office = backoffice.Backoffice(store, None, str(shelf))
    assert office.fleet_bundle(TERMINAL.hex()) is None  # no group: no profile
    store.assign_group(TERMINAL.hex(), "route-7")
    kind, version, data = office.fleet_bundle(TERMINAL.hex())
    assert (kind, version) == (fleet.KIND_PROFILE, 3)
    assert fleet.profile_body(data[fleet.HEAD:-fleet.SIG])["bus"]["default_fen"] == 300
    t = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    [offer] = t.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_PROFILE, 3)
    store.set_delivered(TERMINAL.hex(), fleet.KIND_PROFILE, 3)
    assert office.fleet_bundle(TERMINAL.hex()) is None
    store.assign_group(TERMINAL.hex(), "route-9")  # re-provisioned onto another route
    os.utime(shelf, None)
    assert office.fleet_bundle(TERMINAL.hex())[:2] == (fleet.KIND_PROFILE, 5)
