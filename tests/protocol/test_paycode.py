"""Payment codes on both runtimes: protocol/paycode.py recognition and the ONLINE_REQUEST / ONLINE_RESULT
pair (golden vectors in protocol/vectors/link.json "online", decode raising only LinkError)."""

import json
import os

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import link, paycode

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "link.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)["online"]


def body_classify(payloads):
    from protocol import paycode

    out = []
    for p in payloads:
        got = paycode.classify(p)
        out.append(None if got is None else (got[0], bytes(got[1]).decode(), paycode.is_numeric(p)))
    return out


def test_families_by_prefix_and_exact_length(runtime):
    cases = [
        (b"6222021234567890123", (paycode.UNIONPAY, "6222021234567890123", True)),
        (b"6222021234567890123\r\n", (paycode.UNIONPAY, "6222021234567890123", True)),
        ("134567890123456789", (paycode.WECHAT, "134567890123456789", True)),
        (b"100000000000000000", (paycode.WECHAT, "100000000000000000", True)),
        (b"2812345678901234", (paycode.ALIPAY, "2812345678901234", True)),
        (b"301234567890123456789012", (paycode.ALIPAY, "301234567890123456789012", True)),
        (b"622202123456789012", None),  # UnionPay is 19 digits
        (b"13456789012345678", None),  # WeChat is 18
        (b"281234567890123", None),  # Alipay 16..24
        (b"2812345678901234567890123", None),
        (b"1612345678901234567", None),  # 16 is no family's prefix
        (b"62220212345678901a3", None),
        (b"622202 1234567890123", None),
        (b"", None), (b"\r\n", None), (b"\xd9\xa2" * 10, None),
        (b"hQVDUFYwMTAwMDAw", None), (b"000201010211", None), (b"ZT1.abc", None),
    ]
    got = runtime.run(body_classify, [p for p, _ in cases])
    assert [None if g is None else tuple(g) for g in got] == [want for _, want in cases]


def test_malformed_numeric_keeps_its_family_for_the_reason():
    assert paycode.family_of(b"622202123456789012") == paycode.UNIONPAY
    assert paycode.classify(b"622202123456789012") is None
    assert paycode.is_numeric(b"622202123456789012\r")
    assert paycode.family_of(b"99") is None
    assert paycode.masked("6222021234567890123") == "6222***********0123"


def body_online(vectors):
    import binascii

    from protocol import link

    out = []
    for v in vectors:
        payload = binascii.unhexlify(v["payload"])
        msg = link.decode(payload)
        again = link.encode_message(msg)
        out.append((msg["type"], msg["request_id"], again == payload))
    return out


def test_online_golden_vectors_round_trip(runtime):
    v = load()["clear"]
    got = runtime.run(body_online, v)
    assert [tuple(g) for g in got] == [(x["message"]["type"], x["message"]["request_id"], True) for x in v]
    assert {x["message"]["type"] for x in v} == {"ONLINE_REQUEST", "ONLINE_RESULT"}
    approved = [x["message"] for x in v if x["message"].get("result") == link.ONLINE_APPROVED][0]
    assert bytes.fromhex(approved["approval"]) == b"123456"
    assert bytes.fromhex(approved["reference"]) == b"000000004711"
    request = v[0]["message"]
    assert (request["family"], request["amount"], request["currency"], request["deadline_ms"]) == (1, 200, 156, 2000)


def body_errors(payloads):
    from protocol import link

    out = []
    for p in payloads:
        try:
            link.decode(p)
            out.append(("ok", 0))
        except link.LinkError as e:
            out.append(("error", e.code))
    return out


def test_online_invalid_vectors_raise_their_code(runtime):
    v = load()["invalid"]
    got = runtime.run(body_errors, [bytes.fromhex(x["payload"]) for x in v])
    assert [tuple(g) for g in got] == [("error", x["code"]) for x in v]


def test_online_bodies_only_ever_raise_link_error(runtime):
    payloads = draw_examples(st.one_of(
        st.builds(lambda t, rest: bytes([1, t, 4, 0, 0, 0, 0]) + rest, st.sampled_from([12, 13]),
                  st.binary(max_size=60)),
        st.builds(lambda rid, res, rest: bytes([1, 13, 4, 0, 0, 0, 0]) + rid.to_bytes(4, "little") + bytes([res])
                  + rest, st.integers(0, 0xFFFFFFFF), st.integers(0, 4), st.binary(max_size=40)),
        st.builds(lambda n, rest: bytes([1, 12, 4, 0, 0, 0, 0]) + bytes(13) + bytes([n]) + rest,
                  st.integers(0, 255), st.binary(max_size=30))), 300)
    payloads += [bytes.fromhex(x["payload"]) for x in load()["clear"]]  # well-formed ones decode
    chunks = [(payloads[i:i + 60],) for i in range(0, len(payloads), 60)]
    got = [r for rs in runtime.run_many(body_errors, chunks) for r in rs]
    assert len(got) == len(payloads)
    assert all(kind in ("ok", "error") for kind, _ in got)
    assert all(kind == "ok" for kind, _ in got[-len(load()["clear"]):])


def test_request_body_refuses_what_it_cannot_carry():
    for code in (b"", b"62x", b"1" * 25):
        try:
            link.online_request(1, 1, 200, 156, 2000, code)
        except link.LinkError as e:
            assert e.code == link.E_MALFORMED
        else:
            raise AssertionError(code)
