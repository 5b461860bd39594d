"""protocol/ecc_g_sm2.py, the sm2 generator's comb table: what the generator tool writes and what ecc builds,
on both runtimes (tests/protocol/ecc_table_checks.py)."""

from tests.protocol.ecc_table_checks import (
    body_table_matches,
    constant_is_the_built_table,
    module_is_what_the_generator_writes,
)


def test_module_is_what_the_generator_writes():
    module_is_what_the_generator_writes("sm2")


def test_constant_is_the_built_table():
    constant_is_the_built_table("sm2")


def test_table_matches_on_the_runtime(runtime):
    assert runtime.run(body_table_matches, "sm2") is True
