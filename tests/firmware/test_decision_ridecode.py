"""firmware/decision.py with ride codes, on both runtimes: an SM2 and a P-256 code accepted at the fare of
kind 6 with the billing extension, the same code again "already used", each refusal with its record
reason (revoked issuer through the active configuration, expired, no roots, no clock, garbage)."""

import struct

import pytest

from host_sim.tools import ridecodes
from protocol import record, ridecode
from tests.firmware.helpers import roomy

NOW = 1_800_000_000


def body_rides(root, roots_text, lines, now, revoked, fares, replay=()):
    """Decide `lines` in turn on a Decider whose flash root holds `roots_text` (None: no file);
    accepted codes are remembered as the terminal does after its journal append; `replay`: journal
    records a rebooted terminal feeds to remember_record first."""
    import os

    from firmware import decision
    from protocol import fleet

    try:
        os.mkdir(root + "/keys")
    except OSError:
        pass
    if roots_text is not None:
        with open(root + "/keys/ride-roots", "w") as f:
            f.write(roots_text)
    d = decision.Decider(None)
    d.flash_root = root
    for rec in replay:
        d.remember_record(rec)
    if fares:
        d.use(fleet.KIND_FARES, fares)
    if revoked is not None:
        d.use(fleet.KIND_RIDE_REVOKED, set(tuple(r) for r in revoked))
    out = []
    for i, line in enumerate(lines):
        r = d.decide(line, now)
        if r.outcome == decision.ACCEPT:
            d.remember(r.token, r.atc, 100 + i, r.kind)
        out.append([r.outcome, r.reason, r.kind, r.amount, r.token, [list(e) for e in r.extensions]])
    return out


@pytest.mark.parametrize("alg", [ridecode.ALG_SM2, ridecode.ALG_P256])
def test_accepted_then_already_used(runtime, tmp_path, alg):
    """On a 192 KB heap: beside the decision code, a 128 KB heap has no room left for building the
    comb tables (each needs ~20 KB for a moment besides its 4 KB), see SPEC "Ride codes", memory."""
    runtime = roomy(runtime)
    code = ridecodes.issue(alg, NOW, user_id=b"RIDER001", counter=5, product=2, generated=NOW - 3)
    later = ridecodes.issue(alg, NOW, user_id=b"RIDER001", counter=6, generated=NOW - 1)
    other = ridecodes.issue(alg, NOW, user_id=b"RIDER002", counter=5, generated=NOW)
    got = runtime.run(body_rides, str(tmp_path), ridecodes.root_lines(), [code, code.encode(), later, other, code],
                      NOW, None, {record.KIND_RIDE_CODE: 150})
    assert [(g[0], g[1]) for g in got] == [(1, 0), (2, record.REASON_RIDE_ALREADY_USED), (1, 0), (1, 0),
                                           (2, record.REASON_RIDE_ALREADY_USED)]
    accepted = [g for g in got if g[0] == 1]
    assert all(g[2] == record.KIND_RIDE_CODE and g[3] == 150 for g in accepted)
    tag, value = got[0][5][0]
    assert tag == record.EXT_RIDE
    assert struct.unpack(">HB8sIIH", value) == (ridecodes.ISSUERS[alg], 1, b"RIDER001", 5, NOW - 3, 2)
    assert got[0][4] == ridecode.token({"issuer": ridecodes.ISSUERS[alg], "user_id": b"RIDER001"})
    assert got[0][4] == got[2][4] != got[3][4]  # the same rider with another counter; another rider
    rec = record.encode(bytes(8), 1, NOW, got[0][2], got[0][3], 156, 1, 0, 1, got[0][4], got[0][5])
    assert len(rec) <= record.MAX_SIZE


def test_each_refusal_has_its_reason(runtime, tmp_path):
    good = ridecodes.issue(ridecode.ALG_P256, NOW)
    expired = ridecodes.issue(ridecode.ALG_SM2, NOW, user_to=NOW - 1)
    old = ridecodes.issue(ridecode.ALG_SM2, NOW, generated=NOW - 61)
    revoked = [[ridecodes.ISSUERS[ridecode.ALG_P256], 1]]
    runtime = roomy(runtime)
    got = runtime.run(body_rides, str(tmp_path), ridecodes.root_lines(),
                      [good, expired, old, "ZR1.garbage", good[:-3]], NOW, revoked, None)
    assert [(g[0], g[1], g[2]) for g in got] == [
        (2, record.REASON_RIDE_ISSUER_REVOKED, 6), (2, record.REASON_RIDE_USER_EXPIRED, 6),
        (2, record.REASON_RIDE_TOO_OLD, 6), (2, record.REASON_RIDE_MALFORMED, 6), (2, record.REASON_RIDE_MALFORMED, 6)]
    got = runtime.run(body_rides, str(tmp_path / "none"), None, [good], NOW, None, None)
    assert got[0][:2] == [2, record.REASON_RIDE_UNKNOWN_ROOT]
    got = runtime.run(body_rides, str(tmp_path), ridecodes.root_lines(), [good], 1000, None, None)
    assert got[0][:2] == [2, record.REASON_RIDE_NO_CLOCK]
    assert got[0][3] == 0  # a decline charges nothing


def test_a_code_used_before_a_reboot_stays_used(runtime, tmp_path):
    code = ridecodes.issue(ridecode.ALG_SM2, NOW, user_id=b"RIDER001", counter=5, generated=NOW - 3)
    runtime = roomy(runtime)
    first = runtime.run(body_rides, str(tmp_path), ridecodes.root_lines(), [code], NOW, None, None)[0]
    assert first[:2] == [1, 0]
    rec = record.encode(bytes(8), 1, NOW, first[2], first[3], 156, record.ACCEPTED, 0, 1, first[4], first[5])
    declined = record.encode(bytes(8), 2, NOW, 6, 0, 156, record.DECLINED, 71, 0, first[4])
    again = runtime.run(body_rides, str(tmp_path), ridecodes.root_lines(), [code], NOW + 5, None, None,
                        [declined, rec])
    assert again[0][:2] == [2, record.REASON_RIDE_ALREADY_USED]
