"""protocol/ridecode.py on both runtimes: the golden vectors (protocol/vectors/ridecode.json) decode and
verify to what they say (SM2 and P-256 chains, each refusal with its own verdict), the file is what the
builders make, and fuzzed codes only ever get a verdict, never an exception."""

import base64
import json
import os

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import ecc, ridecode

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "ridecode.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


def body_verdicts(root_lines, cases):
    """For each (code, now, revoked, used): [verdict, fields of interest or None]; one Verifier for all,
    as on a terminal, so its issuer cache is exercised too."""
    import gc

    from protocol import ridecode

    roots = {}
    for line in root_lines:
        entry = ridecode.parse_root_line(line)
        roots[entry[0]] = (entry[1], entry[2])
    verifier = ridecode.Verifier(roots)
    out = []
    for code, now, revoked, used in cases:
        verifier.revoked = set(tuple(r) for r in revoked)
        pairs = set((bytes.fromhex(u), c) for u, c in used)
        verdict, fields = verifier.check(code, now, pairs)
        gc.collect()
        shown = None
        if fields is not None:
            shown = {"root": fields["root"], "alg": fields["alg"], "issuer": fields["issuer"],
                     "issuer_key_id": fields["issuer_key_id"], "user_id": fields["user_id"].hex(),
                     "counter": fields["counter"], "product": fields["product"], "generated": fields["generated"],
                     "token": ridecode.token(fields).hex()}
        out.append([verdict, shown])
    return out


def test_golden_vectors(runtime):
    v = load()
    got = runtime.run(body_verdicts, v["roots"], [(x["code"], v["now"], [], []) for x in v["valid"]])
    for vec, (verdict, shown) in zip(v["valid"], got):
        assert verdict == ridecode.OK, (vec["name"], verdict)
        assert shown == {k: vec[k] for k in vec if k not in ("name", "code")}, vec["name"]
    cases = [(x["code"], x["now"], x["revoked"], x["used"]) for x in v["invalid"]]
    got = runtime.run(body_verdicts, v["roots"], cases)
    assert [(x["name"], g[0]) for x, g in zip(v["invalid"], got)] == [(x["name"], x["verdict"]) for x in v["invalid"]]


def test_vectors_are_what_the_builders_make():
    import ridecode_vectors

    assert ridecode_vectors.vectors() == load()


def test_every_verdict_is_covered():
    v = load()
    assert set(x["verdict"] for x in v["invalid"]) == set(ridecode.VERDICTS)


def body_fuzz(root_lines, now, codes):
    from protocol import ridecode

    roots = {}
    for line in root_lines:
        entry = ridecode.parse_root_line(line)
        roots[entry[0]] = (entry[1], entry[2])
    verifier = ridecode.Verifier(roots)
    return [verifier.check(code, now)[0] for code in codes]


def _mutations():
    v = load()
    base = [x["code"] for x in v["valid"]]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.!"
    flip = st.tuples(st.sampled_from(base), st.integers(4, ridecode.MAX_TEXT - 1), st.sampled_from(alphabet)).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:])
    cut = st.tuples(st.sampled_from(base), st.integers(0, ridecode.MAX_TEXT)).map(lambda t: t[0][:t[1]])
    grow = st.tuples(st.sampled_from(base), st.text(alphabet, min_size=1, max_size=40)).map(lambda t: t[0] + t[1])
    junk = st.text(alphabet, max_size=600).map(lambda s: "ZR1." + s)
    return st.one_of(flip, cut, grow, junk, st.binary(max_size=600).map(lambda b: b"ZR1." + b))


def test_fuzzed_codes_get_a_verdict(runtime):
    v = load()
    codes = draw_examples(_mutations(), 60)
    got = runtime.run(body_fuzz, v["roots"], v["now"], codes)
    assert all(verdict in ridecode.VERDICTS for verdict in got), got
    for code, verdict in zip(codes, got):
        if code not in [x["code"] for x in v["valid"]]:
            assert verdict != ridecode.OK, code


def test_root_lines_refuse_what_is_not_a_root():
    for line in ("root 1 sm2 00", "root 1 rsa " + "00" * 64, "key 1 2 3", "root 300 sm2 " + "00" * 64,
                 "root 1 sm2 " + "00" * 64):
        try:
            ridecode.parse_root_line(line)
        except ridecode.RideCodeError as e:
            assert e.code == ridecode.MALFORMED
        else:
            raise AssertionError(line)
    assert ridecode.parse_root_line("# a comment") is None


def test_issuer_cache_is_bounded_and_shares_a_keys_table():
    from host_sim.tools import ridecodes

    now = 1_800_000_000
    alg = ridecode.ALG_P256
    roots = {ridecodes.ROOT_IDS[alg]: (alg, ridecodes.root_key(alg, ridecodes.ROOT_IDS[alg]).public)}
    verifier = ridecode.Verifier(roots)
    codes = [ridecodes.issue(ridecode.ALG_P256, now, issuer_to=now + 1000 + i) for i in range(3)]  # one key, 3 certs
    assert [verifier.check(c, now)[0] for c in codes] == [ridecode.OK] * 3
    assert len(set(id(key) for _, key in verifier._issuers)) == 1
    assert not isinstance(verifier._issuers[0][1], ecc.FixedKey)  # no table built inside a tap
    assert verifier.prepare_pending() is True  # built while idle, once for the three certificates
    assert verifier.prepare_pending() is False
    assert len(set(id(key) for _, key in verifier._issuers)) == 1
    assert isinstance(verifier._issuers[0][1], ecc.FixedKey)
    assert [verifier.check(c, now)[0] for c in codes] == [ridecode.OK] * 3
    others = [ridecodes.issue(ridecode.ALG_P256, now, key_id=k) for k in range(3, 3 + ridecode.MAX_ISSUERS)]
    assert [verifier.check(c, now)[0] for c in others] == [ridecode.OK] * ridecode.MAX_ISSUERS
    assert len(verifier._issuers) == ridecode.MAX_ISSUERS
    assert verifier.check(codes[0], now)[0] == ridecode.OK  # dropped, verified again from the root


def test_a_returning_riders_code_costs_one_verify(monkeypatch):
    """The user certificate is verified once per (issuer certificate, user certificate): the rider's next
    code costs only its own signature; another rider's costs two; a forged user certificate is still refused."""
    from host_sim.tools import ridecodes

    now = 1_800_000_000
    alg = ridecode.ALG_SM2
    roots = {ridecodes.ROOT_IDS[alg]: (alg, ridecodes.root_key(alg, ridecodes.ROOT_IDS[alg]).public)}
    verifier = ridecode.Verifier(roots)
    calls = []
    real = ecc.verify_sm2
    monkeypatch.setattr(ecc, "verify_sm2", lambda *a, **k: calls.append(1) or real(*a, **k))

    def verifies(code):
        calls.clear()
        verdict = verifier.check(code, now)[0]
        return verdict, len(calls)

    assert verifies(ridecodes.issue(alg, now, counter=1)) == (ridecode.OK, 3)  # root, issuer, code
    assert verifies(ridecodes.issue(alg, now, counter=2)) == (ridecode.OK, 1)
    assert verifies(ridecodes.issue(alg, now, user_id=b"RIDER002")) == (ridecode.OK, 2)
    raw = bytearray(base64.urlsafe_b64decode(ridecodes.issue(alg, now, counter=4)[4:] + "=="))
    raw[ridecode.DYNAMIC_AT - 1] ^= 1  # the rider's certificate, its issuer signature changed
    forged = "ZR1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert verifies(forged) == (ridecode.USER_SIGNATURE, 1)
