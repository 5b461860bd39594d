"""protocol/techcert.py on both runtimes: a technician certificate holds only when the config authority the
terminal trusts signed it, unchanged, for a known role and not expired; a login response holds only for
the terminal and challenge it was made for."""

import functools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim.tools import tickets
from protocol import fleet, techcert

NOW = 1_800_000_000


@functools.cache
def keys():
    return tickets.generate_key(), tickets.generate_key(), tickets.generate_key()  # authority, tech, stranger


def cert(signer, key_id=1, role=techcert.ROLE_TECHNICIAN, issued=NOW - 10, expires=NOW + 86400, name="alice",
         tech=None):
    tech = tech or keys()[1]
    body = techcert.body(key_id, role, issued, expires, name, tech.public_key().public_numbers().n)
    return body + signer.sign(body, padding.PKCS1v15(), hashes.SHA256())


def ring_text():
    return tickets.keyring_line(keys()[0], fleet.AUTHORITY, 1) + "\n"


# --- bodies --------------------------------------------------------------------------------------


def body_parse(ring_text, certs, now):
    from protocol import techcert, ticket

    ring = ticket.Keyring()
    for line in ring_text.splitlines():
        ring.load_line(line)
    out = []
    for c in certs:
        try:
            got = techcert.parse(c, ring, now)
            out.append(("ok", got["name"], got["role"], got["expires"]))
        except techcert.CertError as e:
            out.append(("refused", str(e)))
    return out


def body_responses(ring_text, cert, now, cases):
    from protocol import techcert, ticket

    ring = ticket.Keyring()
    ring.load_line(ring_text.strip())
    parsed = techcert.parse(cert, ring, now)
    return [techcert.check_response(parsed, terminal, challenge, sig) for terminal, challenge, sig in cases]


# --- tests ----------------------------------------------------------------------------------------------


def test_only_a_certificate_the_authority_signed_and_still_valid_holds(runtime):
    authority, _, stranger = keys()
    good = cert(authority)
    tampered = bytearray(good)
    tampered[5] = techcert.ROLE_VIEWER  # a viewer cannot make itself a technician
    got = runtime.run(body_parse, ring_text(), [
        good, cert(authority, role=techcert.ROLE_VIEWER, name="bob"), bytes(tampered), cert(stranger),
        cert(authority, key_id=2), cert(authority, expires=NOW - 1), good[:-1], b"ZTC1" + bytes(600), b"",
        cert(authority, issued=NOW + 1000, expires=NOW + 2000),  # a clock never set cannot judge expiry
    ], NOW)
    assert got[0] == ("ok", "alice", techcert.ROLE_TECHNICIAN, NOW + 86400)
    assert got[1][:3] == ("ok", "bob", techcert.ROLE_VIEWER)
    assert got[2] == ("refused", "bad signature on certificate (config key 1)")
    assert got[3] == ("refused", "bad signature on certificate (config key 1)")
    assert got[4] == ("refused", "no config key 2")
    assert got[5] == ("refused", "certificate expired")
    assert got[6][0] == got[7][0] == got[8][0] == "refused"
    assert got[9][0] == "ok"


def test_the_host_refuses_to_build_a_certificate_for_a_bad_name_or_role():
    import pytest

    with pytest.raises(techcert.CertError):
        techcert.body(1, techcert.ROLE_TECHNICIAN, 0, 1, "two words", 3)
    with pytest.raises(techcert.CertError):
        techcert.body(1, 9, 0, 1, "alice", 3)


def test_a_response_holds_for_one_terminal_and_one_challenge(runtime):
    authority, tech, stranger = keys()
    terminal, challenge = bytes(range(8)), bytes(range(16))

    def sign(key, t, c):
        return key.sign(techcert.challenge_message(t, c), padding.PKCS1v15(), hashes.SHA256())

    good = sign(tech, terminal, challenge)
    got = runtime.run(body_responses, ring_text(), cert(authority), NOW, [
        (terminal, challenge, good),
        (terminal, bytes(16), good),  # replayed against another challenge
        (bytes(8), challenge, good),  # relayed to another terminal
        (terminal, challenge, sign(stranger, terminal, challenge)),  # someone else's key
        (terminal, challenge, b"\x00" * 256),
        (terminal, challenge, b""),
    ])
    assert got == [True, False, False, False, False, False]
