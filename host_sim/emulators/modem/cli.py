"""`python -m host_sim emulate modem --dialect simcom|quectel ...`: one modem emulator on a pty (or a
served serial port); the first line is JSON with its port, stdin lines inject faults while it runs."""

import json
import sys
import time

from host_sim import arguments
from host_sim.emulators.modem import DIALECTS, FAULTS, ModemEmulator


def parse_faults(items):
    faults = {}
    for item in items or ():
        name, _, value = item.partition("=")
        if name not in FAULTS:
            raise SystemExit("unknown fault %r (known: %s)" % (name, ", ".join(FAULTS)))
        faults[name] = float(value) if "." in value else int(value or 1)
    return faults


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(args):
    emu = ModemEmulator(args.dialect, connect=parse_hostport(args.connect) if args.connect else None,
                        serve=args.serve, baud=args.baud, faults=parse_faults(args.fault), pwrkey=args.pwrkey)
    first = {"port": emu.port}
    if emu.pwrkey_path:
        first["pwrkey"] = emu.pwrkey_path
    print(json.dumps(first), flush=True)
    try:
        for line in sys.stdin:  # "FAULT[=VALUE]" per line injects a fault while running
            line = line.strip()
            if line:
                name, _, value = line.partition("=")
                try:
                    emu.inject(name, float(value) if "." in value else int(value or 1))
                except ValueError as e:
                    print(json.dumps({"error": str(e)}), flush=True)
        while True:  # stdin closed (e.g. < /dev/null): serve until killed
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--dialect", choices=DIALECTS, required=True)
    parser.add_argument("--connect", metavar="HOST:PORT", type=arguments.host_port,
                        help="bridge every socket to this TCP address")
    parser.add_argument("--serve", metavar="DEVICE", type=arguments.serial_port,
                        help="serve this serial port instead of creating a pty")
    parser.add_argument("--baud", type=int, default=115200, help="line rate before the firmware sets one")
    parser.add_argument("--pwrkey", action="store_true",
                        help="also open a pty for the board's PWRKEY pin (ZF_MODEM_PWRKEY of the virtual board)")
    parser.add_argument("--fault", action="append", metavar="NAME[=VALUE]", help="inject a fault: " + ", ".join(FAULTS))
