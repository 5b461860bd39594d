"""A GPS receiver (NMEA 0183 at 9600 baud) on a pty: it plays a route's coordinates, one fix a second.

Each second it sends RMC then GGA for the current point of the route (latitude and longitude in
micro-degrees, as profile stops are written), moving to the next point every `dwell` seconds and
staying at the last one.  Fault modes, switchable while it runs (`mode = ...`), are what a real
receiver does in a bus: "garbage" (noise on the line), "bad-checksum" (sentences with a wrong checksum),
"no-fix" (well-formed sentences with status V / quality 0 and empty position fields, as at power-up or
in a valley) and "silence" (nothing at all: a cut wire).

    python -m host_sim emulate gps --route 30274100,120155000 --route 30280000,120160000 [--dwell 5]
                                   [--mode ok|garbage|bad-checksum|no-fix|silence] [--port PTY]
"""

import json
import os
import sys
import threading
import time

from host_sim import arguments
from host_sim.emulators.serial_emulator import SerialEmulator

MODES = ("ok", "garbage", "bad-checksum", "no-fix", "silence")
BAUD = 9600


def checksum(body):
    """The NMEA checksum of the text between "$" and "*": XOR of its bytes, two upper-case hex digits."""
    x = 0
    for b in body.encode():
        x ^= b
    return "%02X" % x


def sentence(body, bad=False):
    c = checksum(body)
    if bad:
        c = "%02X" % (int(c, 16) ^ 0x5A)
    return "$%s*%s\r\n" % (body, c)


def _coord(e6, deg_digits, hemispheres):
    hemi = hemispheres[0] if e6 >= 0 else hemispheres[1]
    e6 = abs(e6)
    deg = e6 // 1000000
    minutes = (e6 % 1000000) * 60 / 1000000
    return "%0*d%08.5f" % (deg_digits, deg, minutes), hemi


def fix_sentences(lat_e6, lon_e6, when, fix=True, bad=False):
    """RMC and GGA for one second, as bytes."""
    hms = time.strftime("%H%M%S.00", time.gmtime(when))
    dmy = time.strftime("%d%m%y", time.gmtime(when))
    if fix:
        lat, ns = _coord(lat_e6, 2, "NS")
        lon, ew = _coord(lon_e6, 3, "EW")
        rmc = "GPRMC,%s,A,%s,%s,%s,%s,12.5,87.0,%s,,,A" % (hms, lat, ns, lon, ew, dmy)
        gga = "GPGGA,%s,%s,%s,%s,%s,1,08,1.0,12.0,M,7.0,M,," % (hms, lat, ns, lon, ew)
    else:
        rmc = "GPRMC,%s,V,,,,,,,%s,,,N" % (hms, dmy)
        gga = "GPGGA,%s,,,,,0,00,99.9,,M,,M,," % hms
    return (sentence(rmc, bad) + sentence(gga, bad)).encode()


class GpsEmulator(SerialEmulator):
    NAME = "gps-emulator"

    def __init__(self, route, port=None, dwell=5.0, mode="ok", period=1.0, clock=time.time):
        super().__init__(port, BAUD)
        if not route:
            raise ValueError("a route needs at least one point")
        if mode not in MODES:
            raise ValueError("mode %r unknown (%s)" % (mode, ", ".join(MODES)))
        self.route = list(route)  # [(lat_e6, lon_e6)]
        self.dwell = dwell
        self.mode = mode
        self.period = period
        self.clock = clock
        self.sent = 0  # seconds of sentences sent
        self.index = 0  # the route point being played
        self._rand = os.urandom
        self._player = None

    def received(self, data):
        pass  # configuration sentences from the device are ignored, as most receivers ignore them

    def go_to(self, index):
        """Jump to route point `index` (the bus arrived there)."""
        self.index = max(0, min(index, len(self.route) - 1))
        self.sent = int(self.index * self.dwell)

    def second(self):
        """What the receiver sends this second, by mode (b"" for silence)."""
        lat, lon = self.route[self.index]
        if self.mode == "silence":
            return b""
        if self.mode == "garbage":
            return bytes(b % 96 + 32 if b % 7 else 13 for b in self._rand(120))
        return fix_sentences(lat, lon, self.clock(), fix=self.mode != "no-fix", bad=self.mode == "bad-checksum")

    def _play(self):
        while not self.stopping():
            data = self.second()
            if data:
                self.write(data)
            self.sent += 1
            if self.dwell > 0:
                self.index = min(int(self.sent / self.dwell), len(self.route) - 1)
            time.sleep(self.period)

    def start(self):
        super().start()
        if self._player is None:
            self._player = threading.Thread(target=self._play, name="gps-player", daemon=True)
            self._player.start()
        return self

    def close(self):
        self._stopping.set()
        if self._player is not None:
            self._player.join(timeout=2 * self.period + 1)
        super().close()


def point(spec):
    lat, _, lon = spec.partition(",")
    try:
        return int(lat), int(lon)
    except ValueError:
        raise ValueError("--route wants LAT_E6,LON_E6 (micro-degrees), got %r" % spec) from None


def main(args):
    try:
        route = [point(s) for s in args.route]
        emu = GpsEmulator(route, args.serve or args.port, dwell=args.dwell, mode=args.mode)
    except ValueError as e:
        print("emulate gps: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps({"port": emu.port, "baud": BAUD, "points": len(route), "mode": emu.mode}), flush=True)
    emu.start()
    try:
        for raw in sys.stdin:  # a mode name switches the fault mode; a number jumps to that route point
            word = raw.strip()
            if word in MODES:
                emu.mode = word
            elif word.isdigit():
                emu.go_to(int(word))
            elif word:
                print(json.dumps({"error": "unknown input %r (a mode or a point index)" % word}), flush=True)
                continue
            print(json.dumps({"mode": emu.mode, "point": emu.index}), flush=True)
        while not sys.stdin.isatty() and args.hold:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--route", action="append", required=True, metavar="LAT_E6,LON_E6",
                        help="a point of the route in micro-degrees (repeat, in order)")
    parser.add_argument("--dwell", type=float, default=5.0, help="seconds at each point (0: stay)")
    parser.add_argument("--mode", choices=MODES, default="ok", help="fault mode to start in")
    parser.add_argument("--hold", action="store_true", help="keep sending after stdin ends")
    parser.add_argument("--port", type=arguments.serial_port,
                        help="attach to this existing port (e.g. a virtual board's gps pty)")
    parser.add_argument("--serve", metavar="DEVICE", type=arguments.serial_port,
                        help="serve a real serial port (USB-serial adapter wired to a board)")
