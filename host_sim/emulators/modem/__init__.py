"""Cellular modem emulators, one AT dialect per module over a shared base (base.py).

`ModemEmulator(dialect, ...)` makes the emulator of a dialect named in DIALECTS; its options are those
of base.Modem.  The command line is cli.py (`python -m host_sim emulate modem`).
"""

from host_sim.emulators.modem.base import FAULTS
from host_sim.emulators.modem.quectel import QuectelModem
from host_sim.emulators.modem.simcom import SimcomModem

DIALECTS = {"simcom": SimcomModem, "quectel": QuectelModem}

__all__ = ["DIALECTS", "FAULTS", "ModemEmulator"]


def ModemEmulator(dialect, **options):  # a factory named like the class it returns
    """A modem emulator speaking `dialect`, serving its line from now on."""
    if dialect not in DIALECTS:
        raise ValueError("dialect must be one of %s" % ", ".join(DIALECTS))
    return DIALECTS[dialect](**options)
