"""`python -m host_sim bundle` and the collector's fleet offers: keygen/make/show as commands, the newest
bundle of each kind offered (after any deny-list delta) with the per-terminal HMAC and sent from the
terminal's offset, delivery recorded per terminal and kind, nothing offered once a terminal has it."""

import hashlib
import json
import os

import pytest

from host_sim.backend import acquirer, backoffice, host_session
from host_sim.tools import bundle as fleet_bundles
from host_sim.tools import provision
from protocol import bundle, fleet, frame, link, peer
from tests.host_sim.helpers import (
    BAD,
    GOOD,
    KEY,
    TERMINAL,
    ListeningTerminal,
    bundle_cli,
    free_port,
    registered,
    start_collector,
    tap_record,
)


def test_keygen_make_show_commands(tmp_path):
    key = str(tmp_path / "authority.pem")
    rc, out, _ = bundle_cli("keygen", "--key", key, "--key-id", "3")
    assert rc == 0 and json.loads(out) == {"key_file": key, "public_file": key + ".pub", "key_id": 3}
    assert (tmp_path / "authority.pem").stat().st_mode & 0o077 == 0
    assert bundle_cli("keygen", "--key", key)[0] == 1  # never overwritten
    rc, out, err = bundle_cli("make", "fares", "--key", key, "--version", "4", "--fare", "qr=350", "--fare", "emv=300",
                       "--out", str(tmp_path / "f.zfb"))
    assert rc == 0, err
    made = json.loads(out)
    assert (made["kind"], made["key_id"], made["version"], made["fares"]) == ("fares", 3, 4, {"qr": 350, "emv": 300})
    rc, out, err = bundle_cli("make", "ticket-keys", "--key", key, "--version", "2", "--ticket-key", "7:1", "--revoke",
                       "7:0", "--revoke-ticket", "7:4c4f535450415353", "--keys-dir", str(tmp_path / "issuers"),
                       "--out", str(tmp_path / "k.zfb"))
    assert rc == 0, err
    rc, out, _ = bundle_cli("show", str(tmp_path / "k.zfb"), "--config-keys", key + ".pub")
    shown = json.loads(out)
    assert shown["keys"] == ["7:1"] and shown["revoked"] == ["7:0"]
    assert shown["revoked_tickets"] == ["7:4c4f535450415353"] and shown["signature"] == "ok"
    other = str(tmp_path / "other.pem")
    bundle_cli("keygen", "--key", other, "--key-id", "3")
    assert json.loads(bundle_cli("show", str(tmp_path / "f.zfb"), "--config-keys", other + ".pub")[1])["signature"] \
        == "bad signature on fleet bundle (config key 3)"
    (tmp_path / "bad.zfb").write_bytes(b"ZFB1" + bytes(20))
    rc, _, err = bundle_cli("show", str(tmp_path / "bad.zfb"))
    assert rc == 1 and "bundle:" in err
    rc, _, err = bundle_cli("make", "fares", "--key", key, "--version", "5", "--fare", "bus=1",
                            "--out", str(tmp_path / "x"))
    assert rc == 1 and "--fare wants" in err


@pytest.fixture
def shelf(tmp_path):
    """A bundles directory with fares v1 and v2, ticket keys v1 and a file that is not a bundle."""
    key = str(tmp_path / "a.pem")
    fleet_bundles.keygen(key, 1)
    signer, kid = fleet_bundles.load_signer(key)
    d = tmp_path / "bundles"
    d.mkdir()
    for version, fen in ((1, 300), (2, 350)):
        (d / ("fares-%d.zfb" % version)).write_bytes(
            fleet_bundles.sign(signer, kid, fleet.KIND_FARES, version, fleet_bundles.fares_body({1: fen})))
    n = signer.public_key().public_numbers().n
    (d / "keys-1.zfb").write_bytes(fleet_bundles.sign(signer, kid, fleet.KIND_TICKET_KEYS, 1,
                                                      fleet_bundles.ticket_keys_body([(7, 1, n)])))
    (d / "junk.zfb").write_bytes(b"ZFB1 not really")
    return str(d)


def confirm(t, offer):
    t.peer.send(link.CONFIG_CHUNK, link.config_chunk(offer["kind"], offer["version"], 0, b""), 0)
    t.pump()
    chunks = sorted(t.take("CONFIG_CHUNK"), key=lambda c: c["offset"])
    data = b"".join(c["data"] for c in chunks)
    assert hashlib.sha256(data).digest() == offer["digest"] and len(data) == offer["size"]
    t.peer.send(link.CONFIG_CHUNK, link.config_chunk(offer["kind"], offer["version"], len(data), b""), 0)
    t.pump()
    return data


def test_the_collector_offers_the_newest_fleet_bundles_and_a_deny_list_goes_first(tmp_path, shelf):
    store = registered(tmp_path)
    office = backoffice.Backoffice(store, acquirer.Acquirer({"decline_atcs": [41]}), shelf)
    t = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    [offer] = t.take("CONFIG_OFFER")  # no deny list yet: ticket keys (kind 2) come first
    assert (offer["kind"], offer["version"]) == (fleet.KIND_TICKET_KEYS, 1)
    assert bundle.verify(bundle.config_key(KEY), offer["kind"], offer["version"], offer["size"], offer["digest"],
                         offer["signature"])
    t.upload([tap_record(1, BAD, 41), tap_record(2, GOOD, 7)])  # a decline while the key bundle is open: it goes first
    office.authorise_pending()
    [deny] = t.pump().take("CONFIG_OFFER")
    assert deny["kind"] == bundle.KIND_DENY
    confirm(t, deny)
    [again] = t.take("CONFIG_OFFER")  # then the fleet bundle it took over from
    assert {k: again[k] for k in ("kind", "version", "digest")} == {k: offer[k] for k in ("kind", "version", "digest")}
    data = confirm(t, again)
    assert fleet.head(data, len(data))[0] == fleet.KIND_TICKET_KEYS
    [offer] = t.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_FARES, 2)  # only the newest fares
    data = confirm(t, offer)
    assert fleet.fares(data[fleet.HEAD:-fleet.SIG]) == {1: 350}
    assert t.take("CONFIG_OFFER") == []
    assert sorted(store.query("SELECT kind, version FROM config_delivered WHERE terminal = ?", (TERMINAL.hex(),))) \
        == [(1, 1), (2, 1), (3, 2), (fleet.KIND_TOKEN_KEY, 1)]
    t2 = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    assert t2.take("CONFIG_OFFER") == []  # a new session: nothing left to offer


def test_a_refused_fleet_bundle_is_recorded_and_not_offered_again_but_a_newer_one_is(tmp_path, shelf):
    store = registered(tmp_path)
    office = backoffice.Backoffice(store, None, shelf)
    t = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    [offer] = t.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_TICKET_KEYS, 1)
    t.peer.error(link.E_CONFIG_REJECTED, "bad signature on fleet bundle (config key 1)")
    t.pump()
    [offer] = t.take("CONFIG_OFFER")  # at once the next kind, not the refused one again
    assert (offer["kind"], offer["version"]) == (fleet.KIND_FARES, 2)
    confirm(t, offer)
    assert store.query("SELECT kind, version, reason FROM config_refused") == [
        (fleet.KIND_TICKET_KEYS, 1, "bad signature on fleet bundle (config key 1)")]
    t2 = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    assert t2.take("CONFIG_OFFER") == []  # a new session does not download the refused bundle again
    signer, kid = fleet_bundles.load_signer(str(tmp_path / "a.pem"))
    n = signer.public_key().public_numbers().n
    with open(os.path.join(shelf, "keys-2.zfb"), "wb") as f:
        f.write(fleet_bundles.sign(signer, kid, fleet.KIND_TICKET_KEYS, 2, fleet_bundles.ticket_keys_body([(7, 2, n)])))
    t3 = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    [offer] = t3.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_TICKET_KEYS, 2)


def test_collector_command_offers_bundles_from_its_directory(tmp_path, shelf):
    db = str(tmp_path / "c.db")
    registered(tmp_path).close()
    proc, conn = start_collector(db, free_port(), "--bundles", shelf)
    offers = []
    try:
        with conn:
            t = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "tcp test", window=8, max_frame=288, rx_window=4)
            reader = frame.FrameReader()
            t.start(0)
            while not offers:
                p = t.poll(0)
                if p is not None:
                    conn.sendall(link.wire(p))
                    continue
                data = conn.recv(512)
                assert data, "the collector closed the connection"
                for q in reader.feed(data):
                    offers += [m for m in t.feed(q, 0) if m["type"] == "CONFIG_OFFER"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert [(o["kind"], o["version"]) for o in offers] == [(fleet.KIND_TICKET_KEYS, 1)]


def test_provision_refuses_a_file_without_a_config_key(tmp_path):
    (tmp_path / "x.pub").write_text("key 7 1 " + "f" * 512 + "\n")
    with pytest.raises(provision.ProvisionError, match="no config key"):
        provision.read_config_keys(str(tmp_path / "x.pub"))
    (tmp_path / "y.pub").write_text("garbage\n")
    with pytest.raises(provision.ProvisionError, match="bad key line"):
        provision.read_config_keys(str(tmp_path / "y.pub"))
