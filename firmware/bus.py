"""The village bus: where the bus is (the current stop) and what a ride costs (protocol/busfare.py).

The current stop comes from the driver display or stop button (`set_stop`, `set_destination`) or from the
GPS receiver (`fix`, firmware/drivers/gps.py); a GPS stop is trusted for STALE_MS after its fix.  With no
stop known (no fix, garbage, silence) the ride costs the profile's default fare and the record says so
(rule RULE_DEFAULT); the display and the console say it once when that starts (`fallback_changed`).

`price(decider, d, now)` is the one place a bus ride's amount is set: the fare for the stops, then the
credential's transfer discount or daily cap from its durable state (the firmware/tapstate.py Entry the
risk check read: last_s, day, paid; app.py counts the ride at the amount set here once it is journalled),
and the record extensions EXT_BUS_STOPS and EXT_BUS_RULE that let the host recompute it.
"""

import struct
import time

from protocol import busfare, profile, record

STALE_MS = 120000  # a GPS stop older than this is no longer where the bus is
CLOCK_VALID_FROM = 1704067200  # firmware/decision.py's: days and windows need a board clock that was set


class BusStops:
    def __init__(self):
        self.stop = None  # index of the current stop in the profile's "stops", None: not known
        self.source = busfare.SOURCE_NONE
        self.dest = None  # a destination the driver display chose for the next ride (then cleared)
        self._at = 0  # ticks_ms of the GPS fix that set `stop`
        self.gps_ok = False  # the GPS gives fixes at a stop or between stops
        self._said = None  # the fallback state last announced (None: never)
        self.started = False

    def set_stop(self, index):
        """The driver display or stop button names the stop the bus is at (kept until the next one)."""
        self.stop = index
        self.source = busfare.SOURCE_DRIVER

    def set_destination(self, index):
        """The driver display chose the next passenger's destination (stage and zone fares)."""
        self.dest = index

    def next_stop(self, bus):
        """The stop button: the bus is at the next stop along the route (the first one if none was known)."""
        stop = self.current()[0]
        n = len(bus.get("stops", ()))
        self.set_stop(0 if stop is None else min(stop + 1, n - 1))

    def release(self):
        """The driver hands the stop back to the GPS."""
        self.stop = None
        self.source = busfare.SOURCE_NONE

    def fix(self, bus, lat_e6, lon_e6):
        """A valid GPS fix: the stop within the profile's radius, if any, becomes the current stop."""
        self.gps_ok = True
        if self.source == busfare.SOURCE_DRIVER:
            return  # the driver's word stands over the receiver's
        near = busfare.nearest(bus, lat_e6, lon_e6)
        if near is not None:
            self.stop = near
            self.source = busfare.SOURCE_GPS
            self._at = time.ticks_ms()

    def lost(self):
        """The GPS sends garbage, reports no fix, or nothing at all."""
        self.gps_ok = False

    def current(self):
        """(stop index or None, source) as a ride should be charged now."""
        if self.source == busfare.SOURCE_GPS and (not self.gps_ok or time.ticks_diff(time.ticks_ms(), self._at)
                                                  > STALE_MS):
            return None, busfare.SOURCE_NONE
        return self.stop, self.source

    def fallback_changed(self, bus):
        """True once when the bus starts (or stops) charging the default fare for want of a stop; the
        caller says so on the display and the console."""
        if bus["fare"] == busfare.FLAT:
            return False
        fallback = self.current()[0] is None
        if fallback == self._said:
            return False
        self._said = fallback
        return True

    def falling_back(self):
        """The last announcement was "charging the default fare"."""
        return bool(self._said)

    def announced_at_stop(self):
        """The last announcement was that the bus knows its stop (a new stop is then worth a line)."""
        return self._said is False


def base_fare(bus, stops):
    """(fare, rule, stop, dest, source) of a ride now, before the credential's own discounts."""
    stop, source = (None, busfare.SOURCE_NONE) if stops is None else stops.current()
    dest = None if stops is None else stops.dest
    fare, rule = busfare.fare(bus, stop, dest)
    return fare, rule, stop, dest, source


def price(decider, d, now):
    """Set the amount of an accepted (or about to be authorised) bus ride `d`; other decisions pass."""
    bus = decider.active.profile["bus"]
    fare, rule, stop, dest, source = base_fare(bus, decider.bus_stops)
    amount = fare
    entry = d.risk  # the credential's durable entry before this ride (firmware/risk.py), None without state
    if entry is not None and now is not None and now >= CLOCK_VALID_FROM:
        day = profile.local_day(decider.active.profile, now)
        amount, rule = busfare.charge(bus, fare, rule, now, day, entry.last_s, entry.day, entry.paid)
    if decider.bus_stops is not None:
        decider.bus_stops.dest = None  # a destination is chosen per passenger
    ext = list(d.extensions)
    if d.kind == record.KIND_EMV_CONTACTLESS and amount != d.amount:
        # The card signed its amount before the terminal knew whose card it was (the cryptogram comes
        # with GET PROCESSING OPTIONS): charge the ride, never more than signed, and keep what was signed.
        amount = min(amount, d.amount)
        ext.append((record.EXT_CARD_AMOUNT, struct.pack("<I", d.amount)))
    d.amount = amount
    ext.append((record.EXT_BUS_STOPS, bytes((busfare.UNKNOWN if stop is None else stop,
                                             busfare.UNKNOWN if dest is None else dest, source))))
    ext.append((record.EXT_BUS_RULE, struct.pack("<BI", rule, fare)))
    d.extensions = ext
    return d


def setup(decider, board, feedback, running):
    """A bus profile became active (boot or bundle): stops for the decider, the driver display's task
    when the fare depends on the stop, and when the route has coordinates and the board a GPS UART, the
    GPS task (`running`: inside the event loop, so tasks can start now; at boot app.py calls again once
    it is).  Another profile: the decider forgets the stops (the tasks then change nothing)."""
    p = decider.active.profile
    if p is None or "bus" not in p:
        decider.bus_stops = None
        return
    if decider.bus_stops is None:
        decider.bus_stops = BusStops()
    stops = decider.bus_stops
    if not running or stops.started:
        return
    import asyncio

    stops.started = True
    if p["bus"]["fare"] != busfare.FLAT:
        try:
            asyncio.create_task(panel(board.uart("driver", 9600), decider))
            print("driver display: listening")
        except (OSError, ValueError) as e:
            print("driver display: %s" % e)
    if not [s for s in p["bus"].get("stops", ()) if "lat_e6" in s]:
        return
    try:
        uart = board.uart("gps", 9600)
    except (OSError, ValueError) as e:
        print("gps: %s; stops from the driver display only" % e)
        return
    from firmware.drivers import gps

    def say():
        bus = decider.active.profile
        was_falling_back = stops.falling_back()
        if bus is None or "bus" not in bus or not stops.fallback_changed(bus["bus"]):
            return
        if stops.falling_back():
            print("bus: no stop from the GPS, charging the default fare of %d fen" % bus["bus"]["default_fen"])
            feedback.out.display("DEFAULT FARE", "no GPS stop")
        else:
            stop = stops.current()[0]
            print("bus: at stop %d %s" % (stop, bus["bus"]["stops"][stop].get("name", "")))
            if was_falling_back:  # the passenger display showed "default fare": back to ready
                feedback.ready()

    def on_fix(lat_e6, lon_e6):
        bus = decider.active.profile
        if bus is not None and "bus" in bus:
            before = stops.stop
            stops.fix(bus["bus"], lat_e6, lon_e6)
            if stops.stop != before and stops.announced_at_stop():
                print("bus: at stop %d %s" % (stops.stop, bus["bus"]["stops"][stops.stop].get("name", "")))
        say()

    def on_lost():
        stops.lost()
        say()

    print("gps: listening")
    asyncio.create_task(gps.run(uart, gps.Nmea(), on_fix, on_lost))


def panel_line(stops, bus, line):
    """The answer to one line from the driver display (a stop announcer on the "driver" UART):
    "STOP n" the bus is at stop n, "NEXT" the stop button, "DEST n" the next passenger's destination,
    "GPS" the stop comes from the GPS again.  Stops are indexes into the profile's "stops"."""
    words = bytes(line).decode("ascii", "replace").strip().upper().split()
    n = len(bus.get("stops", ()))
    if not words:
        return None
    if len(words) == 2 and words[0] in ("STOP", "DEST"):
        try:
            i = int(words[1])
        except ValueError:
            i = -1
        if not 0 <= i < n:
            return "ERR no stop %s (0..%d)" % (words[1], n - 1)
        if words[0] == "STOP":
            stops.set_stop(i)
        else:
            stops.set_destination(i)
        return "OK %s %d %s" % (words[0], i, bus["stops"][i].get("name", ""))
    if words == ["NEXT"] and n:
        stops.next_stop(bus)
        return "OK STOP %d %s" % (stops.stop, bus["stops"][stops.stop].get("name", ""))
    if words == ["GPS"]:
        stops.release()
        return "OK GPS"
    return "ERR unknown command"


async def panel(uart, decider):
    """Serve the driver display for ever: one answer line per command line."""
    import asyncio

    buf = bytearray(32)
    line = bytearray()
    while True:
        n = uart.readinto(buf)
        for i in range(n or 0):
            b = buf[i]
            if b == 10 or b == 13:
                p = decider.active.profile
                if line and p is not None and "bus" in p and decider.bus_stops is not None:
                    answer = panel_line(decider.bus_stops, p["bus"], line)
                    if answer:
                        print("driver: " + answer)
                        uart.write(answer.encode() + b"\r\n")
                line = bytearray()
            elif len(line) < 32:
                line.append(b)
        await asyncio.sleep_ms(50)
