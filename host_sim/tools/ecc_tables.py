"""Write the generator comb tables protocol/ecc.py reads (protocol/ecc_g_sm2.py, protocol/ecc_g_p256.py).

The generator of each curve is fixed, so its table is a constant: frozen into firmware or in a ROMFS
image it stays in flash, and a terminal never builds it (building one takes ~20 KB of heap for a
moment, more than a long-running terminal reliably has in one piece).  Run after changing ecc.TEETH:
    python -m host_sim.tools.ecc_tables
tests/protocol/test_ecc_tables.py checks the files against ecc's own table builder.
"""

import os

from host_sim.paths import ROOT
from protocol import ecc

MODULES = {"sm2": ecc.SM2, "p256": ecc.P256}


def module_text(curve):
    """The source of the table module of `curve`: TEETH and one 64-byte constant (x || y) per entry."""
    lines = [
        '"""The %s generator\'s comb table for protocol/ecc.py, TEETH = %d: entry j - 1 is the affine x || y'
        % (curve.name, ecc.TEETH),
        "of the sum of 2^(i*DEPTH) G over the bits i of j.  Written by host_sim/tools/ecc_tables.py (do not edit);",
        'a constant, so a firmware with its modules frozen or in ROMFS keeps it in flash, not in RAM."""',
        "",
        "TEETH = %d" % ecc.TEETH,
        "TABLE = (",
    ]
    for entry in ecc.build_table(curve, curve.gx, curve.gy):
        quarters = ['b"%s"' % "".join("\\x%02x" % v for v in entry[i:i + 16]) for i in range(0, 64, 16)]
        lines.append("    " + "\n    ".join(quarters) + ",")
    lines.append(")")
    return "\n".join(lines) + "\n"


def path(name):
    return os.path.join(ROOT, "protocol", "ecc_g_%s.py" % name)


def main():
    for name, curve in MODULES.items():
        with open(path(name), "w") as f:
            f.write(module_text(curve))
        print("wrote " + path(name))


if __name__ == "__main__":
    main()
