"""firmware/config/receiver.py with fleet bundles (protocol/fleet.py), on both runtimes: staged and resumed like a
deny-list delta, then activated only when the digest, the config authority's RSA signature, the layout
and a higher version all hold; the terminal gets the new fares / ticket keys at once and after a reboot.
Tampered, foreign-key, truncated, downgraded and mislabelled bundles are refused with a reason and the
active bundle stays."""


import pytest

from host_sim.tools import bundle as host_bundle
from host_sim.tools import tickets
from protocol import fleet
from tests.firmware.helpers import chunk, config_lines, make, n_of, offer, steps_run


@pytest.fixture(scope="module")
def keys():
    return {"authority": tickets.generate_key(), "other": tickets.generate_key(), "issuer": tickets.generate_key()}


def test_fares_staged_resumed_after_a_cut_verified_and_activated(runtime, tmp_path, keys):
    data = make(keys["authority"], fleet.KIND_FARES, 7, host_bundle.fares_body({1: 350, 3: 300}))
    o = offer(data, 3, 7)
    steps = [
        ("offer", o),
        ("chunk", chunk(data, 3, 7, 0, 100)),
        ("chunk", chunk(data, 3, 7, 150, 100)),  # ahead of a gap: not acknowledged
        ("reboot",),  # power cut with 100 bytes in flash
        ("offer", o),
        ("chunk", chunk(data, 3, 7, 100, 100)),
        ("chunk", chunk(data, 3, 7, 200)),
        ("offer", o),  # the same version again: already held
    ]
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), steps)
    assert out[0] == [3, 7, 0] and out[1] == [True, None] and out[2] == [False, None]
    assert out[4] == [3, 7, 100]  # resumed from the offset in flash
    assert out[5] == [True, None]
    assert out[6] == [True, [3, 7, len(data)]]  # whole, verified, active: confirmed
    assert out[7] == [3, 7, len(data)]
    assert activated == [[3, [(1, 350), (3, 300)]]]
    assert boot["fares"] == [(1, 350), (3, 300)] and boot["fares_version"] == 7
    assert boot["staged"] == ["fleet-3.bin"]  # nothing staged is left behind


def test_ticket_keys_replace_the_keyring(runtime, tmp_path, keys):
    body = host_bundle.ticket_keys_body([(7, 1, n_of(keys["issuer"]))], [(7, 0)], [(7, b"LOSTPASS")])
    data = make(keys["authority"], fleet.KIND_TICKET_KEYS, 2, body)
    steps = [("offer", offer(data, 2, 2)), ("chunk", chunk(data, 2, 2, 0, 200)), ("chunk", chunk(data, 2, 2, 200))]
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), steps)
    assert out[2] == [True, [2, 2, len(data)]]
    assert activated == [[2, [((7, 1), n_of(keys["issuer"]))], [(7, 0)], [(7, b"LOSTPASS")]]]
    assert boot["keys"] == [(7, 1)] and boot["tickets"] == [(7, b"LOSTPASS")] and boot["keys_version"] == 2


def test_forged_foreign_truncated_downgraded_and_mislabelled_bundles_are_refused(runtime, tmp_path, keys):
    good = make(keys["authority"], fleet.KIND_FARES, 5, host_bundle.fares_body({1: 300}))
    forged = bytearray(make(keys["authority"], fleet.KIND_FARES, 6, host_bundle.fares_body({1: 100})))
    forged[-1] ^= 1  # the authority's signature altered (the offer's digest is over the altered bytes)
    forged = bytes(forged)
    foreign = make(keys["other"], fleet.KIND_FARES, 6, host_bundle.fares_body({1: 1}))  # same key id, other key
    unknown = make(keys["other"], fleet.KIND_FARES, 6, host_bundle.fares_body({1: 1}), kid=2)
    older = make(keys["authority"], fleet.KIND_FARES, 4, host_bundle.fares_body({1: 50}))
    mislabelled = make(keys["authority"], fleet.KIND_FARES, 9, host_bundle.fares_body({1: 50}))
    steps = [
        ("offer", offer(good, 3, 5)), ("chunk", chunk(good, 3, 5, 0)),  # v5 active: 3.00
        ("offer", offer(forged, 3, 6)), ("chunk", chunk(forged, 3, 6, 0)),
        ("offer", offer(foreign, 3, 6)), ("chunk", chunk(foreign, 3, 6, 0)),
        ("offer", offer(unknown, 3, 6)), ("chunk", chunk(unknown, 3, 6, 0)),
        ("offer", offer(good[:-1], 3, 6)), ("chunk", chunk(good[:-1], 3, 6, 0)),  # truncated
        ("offer", offer(older, 3, 4)),  # downgrade
        ("offer", offer(mislabelled, 3, 8)), ("chunk", chunk(mislabelled, 3, 8, 0)),  # offer v8, bundle v9
        ("offer", offer(good, 2, 6)), ("chunk", chunk(good, 2, 6, 0)),  # fares offered as ticket keys
        ("offer", dict(offer(good, 3, 6), signature=bytes(32))),  # the per-terminal HMAC is wrong
        ("chunk", chunk(good, 3, 6, 0)),  # no offer open: ignored
    ]
    out, activated, boot = steps_run(runtime, tmp_path, config_lines(keys), steps)
    assert out[1] == [True, [3, 5, len(good)]]
    assert out[3] == "refused: bad signature on fleet bundle (config key 1)"
    assert out[5] == "refused: bad signature on fleet bundle (config key 1)"
    assert out[7] == "refused: no config key 2"
    assert out[9].startswith("refused:") and "header says" in out[9]
    assert out[10] == "refused: downgrade: fares v4 offered, v5 active"
    assert out[12] == "refused: bundle says 3 v9, offer 3 v8"
    assert out[14] == "refused: bundle says 3 v5, offer 2 v6"
    assert out[15].startswith("refused: bad signature on bundle 3")
    assert out[16] == [True, None]
    assert activated == [[3, [(1, 300)]]]
    assert boot["fares"] == [(1, 300)] and boot["fares_version"] == 5
    assert boot["staged"] == ["fleet-3.bin"]


def test_without_a_config_key_nothing_is_activated(runtime, tmp_path, keys):
    data = make(keys["authority"], fleet.KIND_FARES, 1, host_bundle.fares_body({1: 1}))
    steps = [("offer", offer(data, 3, 1)), ("chunk", chunk(data, 3, 1, 0))]
    out, activated, boot = steps_run(runtime, tmp_path, ["# no key provisioned"], steps)
    assert out[1] == "refused: no config key 1" and activated == [] and boot["fares"] == []
