"""protocol/session.py on both runtimes: the secured golden vectors, and that altered, forged, replayed
or earlier-session frames are dropped and counted while reordered ones within the window pass."""

import json
import os

from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import link, session

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "protocol", "vectors", "link.json")


def load():
    with open(VECTORS) as f:
        return json.load(f)


# --- bodies --------------------------------------------------------------------------------------


def body_secure_vectors(key, hello_t, hello_h, flows):
    """Seal each clear payload in order on its side; open it on the other side."""
    from protocol import session

    th = session.transcript(hello_t, hello_h)
    t = session.Session(key, session.ROLE_TERMINAL, th)
    h = session.Session(key, session.ROLE_HOST, th)
    out = []
    for direction, clear in flows:
        tx, rx = (t, h) if direction == "t2h" else (h, t)
        sealed = tx.seal(clear)
        out.append((th, sealed, tx.tx_counter, rx.open(sealed) == clear))
    return out


def body_tamper(key, th, clear, edits):
    """Seal `clear`, apply each (index, xor) edit to a copy and open it: how many opened."""
    from protocol import link, session

    t = session.Session(key, session.ROLE_TERMINAL, th)
    h = session.Session(key, session.ROLE_HOST, th)
    sealed = t.seal(clear)
    opened = 0
    header_refused = 0
    for i, x in edits:
        bad = bytearray(sealed)
        bad[i % len(bad)] ^= x
        try:
            if h.open(bytes(bad)) is not None:
                opened += 1
        except link.LinkError:  # not a secured v1 header any more (version, type, flags)
            header_refused += 1
    truncated = h.open(sealed[:-1])
    good = h.open(sealed)
    replay = h.open(sealed)
    return opened, truncated, good == clear, replay, h.mac_errors + header_refused, h.replays


def body_replay_window(key, th, order):
    """Seal len(order) frames, deliver them in `order` (indices, repeats allowed): which opened."""
    from protocol import link, session

    t = session.Session(key, session.ROLE_TERMINAL, th)
    h = session.Session(key, session.ROLE_HOST, th)
    sealed = [t.seal(link.encode(link.ACK, b"", 0, i)) for i in range(max(order) + 1)]
    return [h.open(sealed[i]) is not None for i in order], h.replays


def body_other_session(key, th1, th2, clear):
    from protocol import session

    old = session.Session(key, session.ROLE_TERMINAL, th1).seal(clear)
    h = session.Session(key, session.ROLE_HOST, th2)
    wrong_key = session.Session(bytes(32), session.ROLE_HOST, th1)
    return h.open(old), wrong_key.open(old), h.mac_errors


def body_proofs(key, th, seq_high):
    from protocol import session

    return (session.proof(key, session.ROLE_TERMINAL, th), session.proof(key, session.ROLE_HOST, th, seq_high),
            session.proof(key, session.ROLE_HOST, th, seq_high + 1))


# --- tests ---------------------------------------------------------------------------------------


def test_secure_golden_vectors(runtime):
    v = load()
    flows = [(x["direction"], bytes.fromhex(x["clear"])) for x in v["secure"]]
    got = runtime.run(body_secure_vectors, bytes.fromhex(v["key"]), bytes.fromhex(v["hello_terminal"]),
                      bytes.fromhex(v["hello_host"]), flows)
    for x, (th, sealed, counter, opened) in zip(v["secure"], got):
        assert th.hex() == v["transcript"]
        assert sealed.hex() == x["payload"], x["name"]
        assert counter == x["counter"] and opened, x["name"]


def test_auth_proofs_match_the_vectors_and_differ_by_role(runtime):
    v = load()
    proof_t, proof_h, other_floor = runtime.run(body_proofs, bytes.fromhex(v["key"]), bytes.fromhex(v["transcript"]),
                                                v["seq_high"])
    assert proof_t != proof_h
    assert other_floor != proof_h  # the host's proof covers seq_high: an altered floor does not verify
    auths = [x for x in v["clear"] if x["message"]["type"] == "AUTH"]
    assert [a["message"]["proof"] for a in auths] == [proof_t.hex(), proof_h.hex()]
    assert "seq_high" not in auths[0]["message"] and auths[1]["message"]["seq_high"] == v["seq_high"]


def test_no_record_field_is_readable_in_a_secured_frame():
    v = load()
    x = v["secure"][0]
    sealed = bytes.fromhex(x["payload"])
    assert sealed[2] & link.FLAG_SECURE
    for field in (b"\x00\x00\x00\x00", b"\x01\x01\x01\x00"):  # zero padding, version/kind/decision
        assert field not in sealed[link.HEADER_SIZE + session.CTR_SIZE:]
    for rec in x["message"]["records"]:
        rec = bytes.fromhex(rec)
        body = sealed[link.HEADER_SIZE + session.CTR_SIZE:]  # header and counter are clear by design
        for field in (rec[28:44], rec[12:16], rec[16:20], rec[20:24], rec[44:]):  # token, seq, time, amount, ext
            assert field not in body
    assert bytes.fromhex("c0ffee00112233445566778899aabbcc") in bytes.fromhex(x["clear"])


def test_any_altered_byte_is_dropped_and_a_replay_too(runtime):
    key, th = bytes(range(32)), bytes(32)
    clear = link.encode(link.RECORDS, link.records([bytes(range(60))]), 1, 0, None, link.FLAG_SEQ)
    size = len(clear) + session.OVERHEAD
    edits = [(i, x) for i in range(size) for x in (0x01, 0x80)]
    edits += draw_examples(st.tuples(st.integers(0, size - 1), st.integers(1, 255)), 50)
    opened, truncated, good, replay, mac_errors, replays = runtime.run(body_tamper, key, th, clear, edits)
    assert opened == 0
    assert truncated is None and good and replay is None
    assert mac_errors == len(edits) + 1 and replays == 1


def test_reordered_frames_pass_within_the_window_and_replays_never(runtime):
    key, th = bytes(range(32)), bytes(32)
    cases = [
        ([2, 0, 1, 3], [True] * 4, 0),
        ([0, 0, 1, 1, 0], [True, False, True, False, False], 3),
        ([70, 3, 7, 6, 69, 70], [True, False, True, False, True, False], 3),  # 63 behind passes, 64 is stale
    ]
    for order, want, replays in cases:
        assert runtime.run(body_replay_window, key, th, order) == (want, replays)


def test_a_frame_from_an_earlier_session_or_another_key_is_rejected(runtime):
    key = bytes(range(32))
    clear = link.encode(link.ACK, b"", 0, 1)
    fresh, wrong, mac_errors = runtime.run(body_other_session, key, b"\x01" * 32, b"\x02" * 32, clear)
    assert fresh is None and wrong is None and mac_errors == 1
