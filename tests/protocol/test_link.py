"""protocol/link.py on both runtimes: golden vectors, round trips, malformed payloads only ever raise
LinkError (with the ERROR code the spec gives), corrupted frames are never read as another message."""

import json
import os

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import frame, link

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "link.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


# --- bodies --------------------------------------------------------------------------------------


def body_clear_vectors(vectors, terminal_hex):
    """Each vector: decoded message (hex for bytes), re-encoded payload, payload read from its frame."""
    import binascii

    from protocol import frame, link

    def js(v):
        if isinstance(v, bytes):
            return binascii.hexlify(v).decode()
        if isinstance(v, list):
            return [js(x) for x in v]
        if isinstance(v, dict):
            return {k: js(v[k]) for k in v}
        return v

    def unjs(msg):
        out = {}
        for k in msg:
            v = msg[k]
            if k in ("terminal", "nonce", "proof", "digest", "signature", "data"):
                v = binascii.unhexlify(v)
            elif k == "records":
                v = [binascii.unhexlify(r) for r in v]
            out[k] = v
        return out

    terminal = binascii.unhexlify(terminal_hex)
    out = []
    for v in vectors:
        payload = binascii.unhexlify(v["payload"])
        msg = link.decode(payload, terminal)
        again = link.encode_message(unjs(v["message"]), terminal)
        reader = frame.FrameReader()
        got = reader.feed(binascii.unhexlify(v["frame"]))
        same = frame.encode(payload) == binascii.unhexlify(v["frame"])
        out.append((js(msg), again == payload, got == [payload], same))
    return out


def body_decode_errors(payloads):
    """("ok", type) or ("error", code) for each payload; any other exception fails the test."""
    from protocol import link

    out = []
    for p in payloads:
        try:
            out.append(("ok", link.decode(p, b"TERMINAL")["type"]))
        except link.LinkError as e:
            out.append(("error", e.code))
    return out


def body_round_trip(cases):
    from protocol import link

    out = []
    for mtype, body, seq, ack, sack, flags in cases:
        p = link.encode(mtype, body, seq, ack, sack, flags)
        try:
            m = link.decode(p, b"TERMINAL")
        except link.LinkError as e:
            out.append(("error", e.code))
            continue
        out.append((m["type"], m["seq"], m["ack"], m["sack"], link.encode_message(m, b"TERMINAL") == p))
    return out


def body_corrupted_frames(stream_frames, damaged):
    """Every payload a reader extracts from damaged frames, decoded or refused."""
    from protocol import frame, link

    reader = frame.FrameReader()
    seen = []
    for f in damaged:
        for p in reader.feed(f):
            try:
                link.decode(p, b"TERMINAL")
                seen.append(p)
            except link.LinkError:
                pass
    return seen, reader.errors


def body_max_payload(sizes):
    from protocol import link

    return [link.max_payload(n) for n in sizes]


# --- tests ---------------------------------------------------------------------------------------


def test_golden_vectors_decode_encode_and_frame(runtime):
    v = load()
    got = runtime.run(body_clear_vectors, v["clear"], v["terminal"])
    assert len(got) == len(v["clear"]) >= 12
    for vector, (msg, re_encoded, framed, same_frame) in zip(v["clear"], got):
        assert msg == vector["message"], vector["name"]
        assert re_encoded and framed and same_frame, vector["name"]


def test_golden_vectors_cover_every_message_type():
    v = load()
    kinds = {x["message"]["type"] for x in v["clear"] + v["secure"] + v["online"]["clear"]}
    assert kinds == set(link.NAMES.values())


def test_invalid_vectors_raise_link_error_with_their_code(runtime):
    v = load()["invalid"]
    got = runtime.run(body_decode_errors, [bytes.fromhex(x["payload"]) for x in v])
    assert got == [("error", x["code"]) for x in v]


def test_header_layout_by_hand():
    p = link.encode(link.RECORDS, b"\x00\x00", seq=0x1234, ack=0xBEEF, sack=(1 << 127) | 5, flags=link.FLAG_SEQ)
    assert p[:7] == bytes([1, 3, link.FLAG_SEQ | link.FLAG_SACK, 0x34, 0x12, 0xEF, 0xBE])
    assert int.from_bytes(p[7:23], "little") == (1 << 127) | 5
    assert p[23:] == b"\x00\x00"


def test_round_trip_of_random_headers_and_bodies(runtime):
    good_bodies = st.sampled_from([
        (link.ACK, b""), (link.BYE, b"\x02"), (link.TIME, link.time_sync(1, 2, 3)),
        (link.CONFIG_CHUNK, link.config_chunk(2, 9, 0, b"abc")), (link.ERROR, link.error(3, "bad")),
        (link.STATUS, link.status(1, 2, -3, 4, 5, 6, 7, 8)), (link.AUTH, bytes(range(32))),
    ])
    cases = draw_examples(st.tuples(good_bodies, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                                    st.one_of(st.none(), st.integers(0, (1 << 128) - 1)),
                                    st.sampled_from([0, link.FLAG_SEQ])), 60)
    batch = [(m, b, seq, ack, sack, flags) for (m, b), seq, ack, sack, flags in cases]
    got = runtime.run(body_round_trip, batch)
    for (m, _, seq, ack, sack, _), res in zip(batch, got):
        assert res == (link.NAMES[m], seq, ack, sack or 0, True)


def test_random_payloads_only_ever_raise_link_error(runtime):
    payloads = draw_examples(st.one_of(
        st.binary(max_size=80),
        st.builds(lambda t, rest: bytes([1, t]) + rest, st.integers(0, 12), st.binary(max_size=80)),
        st.builds(lambda t, f, rest: bytes([1, t, f]) + rest, st.integers(1, 10), st.sampled_from([0, 2, 4, 6]),
                  st.binary(max_size=120))))
    chunks = [(payloads[i:i + 100],) for i in range(0, len(payloads), 100)]  # --fuzz-long: 20000 payloads
    got = [r for rs in runtime.run_many(body_decode_errors, chunks) for r in rs]
    assert len(got) == len(payloads)
    assert all(kind in ("ok", "error") for kind, _ in got)


def test_a_frame_altered_in_any_byte_is_never_read_as_another_message(runtime):
    v = load()
    payloads = [bytes.fromhex(x["payload"]) for x in v["clear"]]
    batch = []
    for p in payloads[:6]:
        f = frame.encode(p)
        for mask in (0x01, 0x80, 0xFF):
            damaged = []
            for i in range(len(f) - 1):
                bad = bytearray(f)
                bad[i] ^= mask
                damaged.append(b"\x00" + bytes(bad))
            batch.append(([], damaged))
    for damaged_args, (seen, errors) in zip(batch, runtime.run_many(body_corrupted_frames, batch)):
        assert seen == [], seen
        assert errors >= len(damaged_args[1]) // 2


def test_max_payload_fits_the_frame_on_the_wire(runtime):
    sizes = [64, 100, 255, 256, 300, 512]
    got = runtime.run(body_max_payload, sizes)
    for n, p in zip(sizes, got):
        worst = link.wire(b"\x01" * p)  # no zeros: the most COBS overhead
        assert len(worst) <= n
        assert p == frame.MAX_PAYLOAD or len(link.wire(b"\x01" * (p + 1))) > n
    assert got[-1] == frame.MAX_PAYLOAD  # the reader's preallocated buffer bounds every frame


def body_refused_codec(bodies, entries):
    """Decode each REFUSED body (("ok", entries) or ("error", code)) and round-trip each entry list."""
    from protocol import link

    out = []
    for b in bodies:
        try:
            m = link.decode(link.encode(link.REFUSED, b, 1, 0, None, link.FLAG_SEQ))
            out.append(("ok", [(e["seq"], e["reason"]) for e in m["refused"]]))
        except link.LinkError as e:
            out.append(("error", e.code))
    trips = []
    for es in entries:
        m = link.decode(link.encode(link.REFUSED, link.refused(es), 2, 0, None, link.FLAG_SEQ))
        trips.append([(e["seq"], e["reason"]) for e in m["refused"]])
    return out, trips


def test_refused_bodies_decode_or_raise_link_error_only(runtime):
    bodies = draw_examples(st.one_of(
        st.binary(max_size=60),
        st.builds(lambda n, rest: bytes([n]) + rest, st.integers(0, 12), st.binary(max_size=60))), 200)
    entries = draw_examples(st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 255)),
                                     max_size=40), 50)
    es = [[tuple(e) for e in x] for x in entries]
    chunks = [(bodies[50 * k:50 * k + 50], es[13 * k:13 * k + 13]) for k in range(4)]
    results = runtime.run_many(body_refused_codec, chunks)
    got = [r for rs, _ in results for r in rs]
    trips = [t for _, ts in results for t in ts]
    for b, (kind, value) in zip(bodies, got):
        if len(b) >= 1 and len(b) == 1 + 5 * b[0]:
            assert kind == "ok" and len(value) == b[0]
        else:
            assert (kind, value) == ("error", link.E_MALFORMED)
    assert len(got) == len(bodies) and trips == es




def body_status_lengths(bodies):
    """STATUS of each body decoded: its log fields (or None), and whether re-encoding gives the same frame."""
    from protocol import link

    out = []
    for body in bodies:
        p = link.encode(link.STATUS, body, 1, 0, None, link.FLAG_SEQ)
        try:
            m = link.decode(p, b"TERMINAL")
        except link.LinkError as e:
            out.append(("error", e.code))
            continue
        same = link.encode_message(m, b"TERMINAL") == p
        out.append((m.get("log_lines"), m.get("log_alerts"), m.get("damaged"), same))
    return out


def test_status_carries_the_log_counters_in_its_38_byte_form(runtime):
    ext = (40960, 2, 1, 7, 3, 2)
    bodies = [link.status(12, 1, -71, 3, 1, 0, 9, 86400, ext + (70000, 5)),  # saturating: 0xFFFF
              link.status(12, 1, -71, 3, 1, 0, 9, 86400, ext)]
    assert [len(b) for b in bodies] == [38, 34]
    got = runtime.run(body_status_lengths, bodies + [bodies[0] + b"\x00"])
    assert got == [(0xFFFF, 5, 2, True), (None, None, 2, True), ("error", link.E_MALFORMED)]
