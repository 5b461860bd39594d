"""protocol/fleet.py on both runtimes: the golden vectors (protocol/vectors/fleet.json) parse to what they
say, every broken one is refused with its reason, builders refuse what terminals refuse, and fuzzed
bundles only ever raise FleetError (or are the original)."""

import json
import os

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

from host_sim.tools import bundle
from protocol import fleet

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "fleet.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


def body_parse(key_lines, bundles):
    """For each bundle (bytes): ["ok", literal dict] or ["error", message]."""
    from protocol import fleet, ticket

    ring = ticket.Keyring()
    for line in key_lines:
        ring.load_line(line)
    out = []
    for data in bundles:
        try:
            got = fleet.parse(data, ring)
        except fleet.FleetError as e:
            out.append(["error", str(e)])
            continue
        if "keys" in got:
            got["keys"] = [[ref[0], ref[1], "%0512x" % n] for ref, n in got["keys"]]
            got["revoked"] = [list(r) for r in got["revoked"]]
            got["tickets"] = [[i, t.hex()] for i, t in got["tickets"]]
        else:
            got["fares"] = dict((str(k), v) for k, v in got["fares"].items())
        out.append(["ok", got])
    return out


def test_golden_vectors(runtime):
    v = load()
    got = runtime.run(body_parse, v["config_keys"], [bytes.fromhex(x["bundle"]) for x in v["valid"]])
    for vec, (status, parsed) in zip(v["valid"], got):
        assert status == "ok", (vec["name"], parsed)
        want = {k: vec[k] for k in vec if k not in ("name", "bundle")}
        assert parsed == want, vec["name"]
    got = runtime.run(body_parse, v["config_keys"], [bytes.fromhex(x["bundle"]) for x in v["invalid"]])
    for vec, (status, message) in zip(v["invalid"], got):
        assert status == "error" and vec["error"] in message, (vec["name"], message)


def test_vectors_are_what_the_builders_make():
    import fleet_vectors

    assert fleet_vectors.vectors() == load()


def test_a_revoked_or_missing_config_key_is_refused(runtime):
    v = load()
    fares = bytes.fromhex(v["valid"][0]["bundle"])
    got = runtime.run(body_parse, v["config_keys"] + ["revoked 0 1"], [fares])
    assert got == [["error", "config key 1 is revoked"]]
    assert runtime.run(body_parse, [], [fares]) == [["error", "no config key 1"]]
    # a ticket issuer's key with the same key id is not a config key
    line = v["config_keys"][0].replace("key 0 1", "key 7 1")
    assert runtime.run(body_parse, [line], [fares]) == [["error", "no config key 1"]]


def test_builders_refuse_what_a_terminal_refuses():
    with pytest.raises(fleet.FleetError):
        bundle.fares_body({})
    with pytest.raises(fleet.FleetError):
        bundle.fares_body({k: 1 for k in range(fleet.MAX_FARES + 1)})
    with pytest.raises(fleet.FleetError):
        bundle.ticket_keys_body([(1, k, 3) for k in range(fleet.MAX_KEYS + 1)])
    with pytest.raises(fleet.FleetError):
        bundle.ticket_keys_body([], [], [(1, b"short")])
    with pytest.raises(fleet.FleetError):
        bundle.unsigned(fleet.KIND_FARES, 1, 0, 0, bundle.fares_body({1: 1}))
    with pytest.raises(fleet.FleetError):
        bundle.unsigned(9, 1, 1, 0, b"")


def test_fuzz_mutated_bundles_only_raise_fleet_error(runtime):
    v = load()
    good = [bytes.fromhex(x["bundle"]) for x in v["valid"]]
    original = body_parse(v["config_keys"], good)

    def mutate(args):
        which, edits, cut = args
        data = bytearray(good[which % len(good)])
        for pos, value in edits:
            data[pos % len(data)] = value
        return bytes(data[:len(data) - cut])

    examples = draw_examples(st.tuples(
        st.integers(0, 1),
        st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4),
        st.one_of(st.just(0), st.integers(0, 300)),
    ).map(mutate))
    examples += draw_examples(st.binary(max_size=400).map(lambda b: b"ZFB1" + b), 20)
    got = runtime.run_many(body_parse, [(v["config_keys"], [data]) for data in examples])
    for data, [(status, value)] in zip(examples, got):
        if status == "ok":  # only a no-op mutation survives the signature
            assert data in good and [status, value] == original[good.index(data)]
        else:
            assert isinstance(value, str) and value
    assert any(s == "error" for [(s, _)] in got)
