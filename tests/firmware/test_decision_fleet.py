"""firmware/decision.py with what fleet bundles bring, on both runtimes: a fare table sets the amount of
each credential kind (a kind it leaves out keeps the default), and a ticket-key body becomes the keyring,
its revoked single tickets declined as "ticket revoked" after their signature checked."""

import pytest

from host_sim.tools import bundle, tickets
from protocol import cpm, record

SALT = bytes(range(16))
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def key():
    return tickets.generate_key()


def body_decide(salt, fares, keys_body, lines, now):
    from firmware import decision
    from protocol import crypto, fleet

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    d.use(fleet.KIND_FARES, fares)
    if keys_body:
        d.use(fleet.KIND_TICKET_KEYS, fleet.keyring(keys_body))
    out = []
    for line in lines:
        r = d.decide(line, now)
        out.append([r.outcome, r.reason, r.kind, r.amount, r.reason_text()])
    return out


def test_fares_per_credential_kind(runtime):
    lines = [cpm.encode("6212345678901234569", atc=1, cryptogram=bytes(range(8)))]
    assert runtime.run(body_decide, SALT, {}, b"", lines, NOW)[0][3] == 200  # the built-in flat fare
    assert runtime.run(body_decide, SALT, {record.KIND_QR_CPM: 350}, b"", lines, NOW)[0][3] == 350
    assert runtime.run(body_decide, SALT, {record.KIND_EMV_CONTACTLESS: 90}, b"", lines, NOW)[0][3] == 200


def test_ticket_keys_body_with_a_revoked_ticket(runtime, key):
    n = key.public_key().public_numbers().n
    body = bundle.ticket_keys_body([(5, 1, n)], [], [(5, b"LOSTPASS")])
    ok = tickets.issue(key, 5, 1, b"GOODPASS", valid_from=NOW - 10, valid_to=NOW + 10)
    lost = tickets.issue(key, 5, 1, b"LOSTPASS", valid_from=NOW - 10, valid_to=NOW + 10)
    got = runtime.run(body_decide, SALT, {record.KIND_TICKET: 0}, body, [ok, lost], NOW)
    assert got[0][:4] == [1, 0, record.KIND_TICKET, 0]
    assert got[1] == [2, record.REASON_TICKET_REVOKED, record.KIND_TICKET, 0, "ticket revoked"]
