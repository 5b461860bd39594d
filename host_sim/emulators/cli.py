"""`python -m host_sim emulate PERIPHERAL ...`: one peripheral emulator on a pty."""

from host_sim import commands

SUBCOMMANDS = {
    "scanner": ("host_sim.emulators.scanner", "GM65 QR scanner (config frames, baud changes); payloads on stdin"),
    "pn532": ("host_sim.emulators.pn532", "PN532 NFC reader (HSU) with an emulated EMV card or phone"),
    "modem": ("host_sim.emulators.modem.cli", "cellular modem (SIMCom or Quectel AT dialect), sockets bridged to TCP"),
    "gps": ("host_sim.emulators.gps", "GPS receiver (NMEA 0183 RMC/GGA, 1 Hz) playing a route, with fault modes"),
}


def add_arguments(parser, argv=()):
    commands.add_table(parser, SUBCOMMANDS, "peripheral", argv)


def main(args):
    return commands.load(args.peripheral_module).main(args)
