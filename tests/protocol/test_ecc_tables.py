"""The generator comb tables protocol/ecc.py imports (protocol/ecc_g_*.py) are exactly what ecc's own
table builder makes for each curve's generator, and a verify through them agrees with one that builds
the generator table itself (MicroPython included)."""

import pytest

from host_sim.tools import ecc_tables
from protocol import ecc


@pytest.mark.parametrize("name", sorted(ecc_tables.MODULES))
def test_table_module_is_what_the_generator_writes(name):
    with open(ecc_tables.path(name)) as f:
        assert f.read() == ecc_tables.module_text(ecc_tables.MODULES[name])


@pytest.mark.parametrize("curve", [ecc.SM2, ecc.P256], ids=lambda c: c.name)
def test_constant_table_is_the_built_one(curve):
    built = [bytes(e) for e in ecc.build_table(curve, curve.gx, curve.gy)]
    assert list(curve.g_table()) == built
    assert len(built) == (1 << ecc.TEETH) - 1 and all(len(e) == 64 for e in built)


def body_tables_on_the_runtime():
    from protocol import ecc

    out = []
    for curve in (ecc.SM2, ecc.P256):
        built = [bytes(e) for e in ecc.build_table(curve, curve.gx, curve.gy)]
        out.append(list(curve.g_table()) == built)
    return out


def test_tables_match_inside_micropython(runtime):
    assert runtime.run(body_tables_on_the_runtime) == [True, True]
