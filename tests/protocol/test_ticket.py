"""protocol/ticket.py on both runtimes: tickets issued by the host (cryptography signs) verify with
pow() on the terminal; every way to break one gives its own TicketError code; fuzzing.
"""

import base64
import string

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

from host_sim.tools import tickets
from protocol import ticket

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def keys():
    return {kid: tickets.generate_key() for kid in (1, 2)}


def body_verify(keylines, texts, now):
    """For each text: ("ok", fields) or (code, message)."""
    from protocol import ticket

    ring = ticket.Keyring()
    for line in keylines:
        ring.load_line(line)
    out = []
    for text in texts:
        try:
            fields = ring.verify(text)
            ticket.check_window(fields, now)
            out.append(("ok", fields))
        except ticket.TicketError as e:
            assert isinstance(e, ValueError)
            out.append((e.code, str(e)))
    return out


def body_keyline(line):
    from protocol import ticket

    try:
        ticket.Keyring().load_line(line)
        return "ok"
    except ticket.TicketError as e:
        return e.code


def issue(key, kid=1, **kw):
    kw.setdefault("valid_from", NOW - 100)
    kw.setdefault("valid_to", NOW + 100)
    return tickets.issue(key, 7, kid, b"T0000001", **kw)


def test_issued_ticket_verifies(runtime, keys):
    text = issue(keys[1], product=42, entries=3, holder=b"\x01\x02")
    assert text.startswith("ZT1.") and len(text) < 512 and "=" not in text
    got = runtime.run(body_verify, [tickets.keyring_line(keys[1], 7, 1)], [text, text.encode()], NOW)
    want = {"version": 1, "issuer": 7, "key_id": 1, "ticket_id": b"T0000001", "product": 42,
            "valid_from": NOW - 100, "valid_to": NOW + 100, "entries": 3, "holder": b"\x01\x02", "party": 1}
    assert got == [("ok", want), ("ok", want)]


def test_rotation_revocation_and_refusals(runtime, keys):
    line1, line2 = tickets.keyring_line(keys[1], 7, 1), tickets.keyring_line(keys[2], 7, 2)
    t1, t2 = issue(keys[1]), issue(keys[2], kid=2)
    forged = issue(keys[2], kid=1)  # claims key 1, signed by key 2
    raw = bytearray(base64.urlsafe_b64decode(t1[4:] + "=" * (-len(t1[4:]) % 4)))
    raw[5] ^= 1  # one bit of the ticket id
    tampered = "ZT1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    texts = [t1, t2, forged, tampered, issue(keys[1], valid_from=NOW + 1), issue(keys[1], valid_to=NOW),
             tickets.issue(keys[1], 8, 1, b"T0000001", valid_from=NOW - 1, valid_to=NOW + 1)]
    got = runtime.run(body_verify, [line1, line2], texts, NOW)
    assert [g[0] for g in got] == ["ok", "ok", "bad signature", "bad signature", "not yet valid", "expired",
                                   "unknown key"]
    # key 1 rotated out: revoked while its key line is still on file
    got = runtime.run(body_verify, [line1, line2, "revoked 7 1", "# comment"], [t1, t2], NOW)
    assert [g[0] for g in got] == ["revoked key", "ok"]


def test_bad_key_lines(runtime, keys):
    line = tickets.keyring_line(keys[1], 7, 1)
    cases = [line, "", "# x", "key 7 1 abc", "key 7 x " + line.split()[3], "revoked 7", "other 1 2",
             "key 7 1 " + "0" * 512, line + "00"]
    got = runtime.run_many(body_keyline, [(c,) for c in cases])
    assert got == ["ok", "ok", "ok"] + ["malformed"] * 6


def test_malformed_tickets(runtime, keys):
    t = issue(keys[1])
    cases = ["", "ZT1.", t[:-10], t + "AAAA", "ZT1." + "!" * 380, "ZT2." + t[4:], t[:4] + "B" + t[5:],
             t + "A", "ZT1." + "A" * 600]
    got = runtime.run(body_verify, [tickets.keyring_line(keys[1], 7, 1)], cases, NOW)
    for text, g in zip(cases, got):
        assert g[0] in ("malformed", "bad signature"), (text, g)
    assert got[0][0] == got[1][0] == got[2][0] == got[4][0] == got[8][0] == "malformed"


def test_fuzz_only_ticket_error(runtime, keys):
    t = issue(keys[1])
    alphabet = string.ascii_letters + string.digits + "-_=+/é"
    examples = draw_examples(st.one_of(
        st.text(alphabet, max_size=400).map(lambda s: "ZT1." + s),
        st.lists(st.tuples(st.integers(4, len(t) - 1), st.sampled_from(alphabet)), min_size=1, max_size=3).map(
            lambda e: "".join(dict(e).get(i, c) for i, c in enumerate(t))),
    ))
    lines = [tickets.keyring_line(keys[1], 7, 1)]
    original = body_verify(lines, [t], NOW)[0][1]
    got = [r[0] for r in runtime.run_many(body_verify, [(lines, [text], NOW) for text in examples])]
    for text, g in zip(examples, got):
        assert g[0] in ("ok", "malformed", "bad signature", "unknown key", "expired", "not yet valid"), (text, g)
        if g[0] == "ok":  # only edits that decode to the same bytes (no-ops, lenient base64) verify
            assert g[1] == original, (text, g)
    assert any(g[0] == "malformed" for g in got)


def test_group_ticket_version_2_carries_its_party_size(runtime, keys):
    group = issue(keys[1], entries=1, party=4, holder=b"\x09")
    single = issue(keys[1])
    got = runtime.run(body_verify, [tickets.keyring_line(keys[1], 7, 1)], [group, single], NOW)
    assert [g[0] for g in got] == ["ok", "ok"]
    assert (got[0][1]["version"], got[0][1]["party"], got[0][1]["holder"], got[0][1]["entries"]) == (2, 4, b"\x09", 1)
    assert (got[1][1]["version"], got[1][1]["party"]) == (1, 1)  # what every terminal reads
    raw = bytearray(base64.urlsafe_b64decode(group[4:] + "=" * (-len(group[4:]) % 4)))
    raw[23] = 0  # party 0: refused before the signature is looked at
    zero = "ZT1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    got = runtime.run(body_verify, [tickets.keyring_line(keys[1], 7, 1)], [zero], NOW)
    assert got[0] == ("malformed", "party size 0")
    with pytest.raises(ticket.TicketError, match="party size 256"):
        tickets.issue(keys[1], 7, 1, b"T0000001", party=256)
