"""Checks shared by the tests of the generator table modules (protocol/ecc_g_sm2.py, ecc_g_p256.py): each is
exactly what host_sim/tools/ecc_tables.py writes, its constant is what ecc's own table builder makes for the
curve's generator (on CPython and inside MicroPython), in 1 KB chunks with G as entry 1."""

from host_sim.tools import ecc_tables
from protocol import ecc


def module_is_what_the_generator_writes(name):
    with open(ecc_tables.path(name)) as f:
        assert f.read() == ecc_tables.module_text(ecc_tables.MODULES[name])


def constant_is_the_built_table(name):
    curve = ecc_tables.MODULES[name]
    built = [bytes(e) for e in ecc.build_table(curve, curve.gx, curve.gy)]
    assert list(curve.g_table()) == built
    assert b"".join(built)[:64] == curve.gx.to_bytes(32, "big") + curve.gy.to_bytes(32, "big")  # entry 1 is G
    assert [len(c) for c in built] == [64 * ecc.CHUNK] * 3 + [64 * 15]  # 63 points in 1 KB blocks


def body_table_matches(name):
    from protocol import ecc

    curve = ecc.SM2 if name == "sm2" else ecc.P256
    return list(curve.g_table()) == [bytes(e) for e in ecc.build_table(curve, curve.gx, curve.gy)]
