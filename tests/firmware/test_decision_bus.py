"""firmware/decision.py with a bus profile, on both runtimes: the fare comes from the stop (driver display
or GPS), the default fare without one, the credential's transfer discount and daily cap from its durable
state (firmware/tapstate.py, kept as app.py keeps it: the entry the decision made, at the amount charged),
and every ride carries EXT_BUS_STOPS and EXT_BUS_RULE."""

from protocol import cpm
from tests.firmware.helpers import roomy

SALT = bytes(range(16))
NOW = 1_800_000_000
BUS = {"profile": "bus", "group": "route-7", "utc_offset_s": 28800,
       "bus": {"fare": "stage", "default_fen": 400, "fares_fen": [100, 200, 300, 400],
               "stops": [{"name": "A", "stage": 0}, {"name": "B", "stage": 1}, {"name": "C", "stage": 2},
                         {"name": "D", "stage": 3}],
               "transfer": {"window_min": 60, "discount_fen": 100}, "daily_cap_rides": 2}}


def body_rides(root, salt, profile, steps, now):
    import struct

    from firmware import bus, decision, risk, tapstate
    from protocol import crypto, fleet, record
    from protocol import profile as profiles

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    d.use(fleet.KIND_PROFILE, profiles.parse(profile))
    d.state = tapstate.TapState(root)
    d.bus_stops = bus.BusStops()
    out = []
    for step in steps:
        if step[0] == "stop":
            d.bus_stops.set_stop(step[1])
            continue
        if step[0] == "dest":
            d.bus_stops.set_destination(step[1])
            continue
        line, t = step[1], now + step[2]
        r = d.decide(line, t)
        ext = dict(r.extensions)
        stops = list(ext[record.EXT_BUS_STOPS])
        rule, fare = struct.unpack("<BI", ext[record.EXT_BUS_RULE])
        out.append([r.outcome, r.amount, stops, rule, fare, d.amount_for(record.KIND_EMV_CONTACTLESS)])
        if r.outcome == decision.ACCEPT:  # journalled as record len(out): app.py keeps the entry then
            risk.commit(d, r, len(out), t)
    return out


def code(pan, atc):
    return cpm.encode(pan, atc=atc, cryptogram=bytes(range(8)))


def test_a_day_on_the_bus(runtime, tmp_path):
    import json

    a, b = "6212345678901234569", "6228480000000000018"
    steps = [
        ("tap", code(a, 1), 0),  # no stop known yet: the default fare
        ("stop", 1),  # the driver display: at B
        ("tap", code(a, 2), 1800),  # half an hour later: transfer discount on B -> end of line (stage 3): 300
        ("tap", code(b, 1), 1801),  # another card, no history: full fare 300
        ("dest", 2),  # the driver chose C for the next passenger
        ("tap", code(b, 2), 9000),  # 2 h later: no transfer, B -> C = 200; now two paid today
        ("tap", code(b, 3), 9300),  # capped: accepted at 0
        ("tap", code(a, 3), 9400),  # a paid 2 rides (400 then 200): capped
        ("tap", code(a, 4), 86400),  # the next day: full fare again, and the destination was per passenger
    ]
    got = roomy(runtime).run(body_rides, str(tmp_path), SALT, json.dumps(BUS).encode(), steps, NOW)
    assert got[0] == [1, 400, [255, 255, 0], 1, 400, 400]
    assert got[1] == [1, 200, [1, 255, 2], 2, 300, 300]
    assert got[2] == [1, 300, [1, 255, 2], 0, 300, 300]
    assert got[3] == [1, 200, [1, 2, 2], 0, 200, 300]
    assert got[4] == [1, 0, [1, 255, 2], 3, 300, 300]
    assert got[5] == [1, 0, [1, 255, 2], 3, 300, 300]
    assert got[6] == [1, 300, [1, 255, 2], 0, 300, 300]


def body_paycode(root, salt, profile, now):
    from firmware import bus, decision, tapstate
    from protocol import crypto, fleet, record
    from protocol import profile as profiles

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    d.use(fleet.KIND_PROFILE, profiles.parse(profile))
    d.state = tapstate.TapState(root)
    d.bus_stops = bus.BusStops()
    d.bus_stops.set_stop(2)
    asked = d.decide(b"6222021234567890123", now)
    online = d.decide_online(asked, 9, {"result": 1, "approval": b"123456", "reference": b"000000000009"})
    deferred = d.decide_offline(asked, decision.POLICY_DEFER, 1000)
    return [[r.outcome, r.amount, sorted(t for t, _ in r.extensions if t in (record.EXT_BUS_STOPS,
                                                                               record.EXT_BUS_RULE))]
            for r in (asked, online, deferred)]


def test_a_payment_code_is_asked_for_the_bus_fare_and_its_record_keeps_the_stops(runtime, tmp_path):
    import json

    from firmware import decision
    from protocol import record

    got = roomy(runtime).run(body_paycode, str(tmp_path), SALT, json.dumps(BUS).encode(), NOW)
    both = [record.EXT_BUS_STOPS, record.EXT_BUS_RULE]
    # at C (stage 2): to the farther end, A, two stages
    assert got == [[decision.ONLINE, 300, both], [decision.ACCEPT, 300, both], [decision.ACCEPT, 300, both]]


def body_panel(profile, lines):
    from firmware import bus
    from protocol import busfare
    from protocol import profile as profiles

    p = profiles.parse(profile)["bus"]
    stops = bus.BusStops()
    out = []
    for line in lines:
        answer = bus.panel_line(stops, p, line)
        out.append([answer, stops.current()[0], stops.dest, list(busfare.fare(p, stops.current()[0], stops.dest))])
    return out


def test_the_driver_display_sets_the_stop_and_the_destination(runtime):
    import json

    got = runtime.run(body_panel, json.dumps(BUS).encode(), [
        b"NEXT", b"next", b"STOP 3", b"DEST 1", b"DEST 9", b"STOP x", b"HELLO", b"", b"GPS"])
    assert got == [
        ["OK STOP 0 A", 0, None, [400, 0]],
        ["OK STOP 1 B", 1, None, [300, 0]],
        ["OK STOP 3 D", 3, None, [400, 0]],
        ["OK DEST 1 B", 3, 1, [300, 0]],
        ["ERR no stop 9 (0..3)", 3, 1, [300, 0]],
        ["ERR no stop X (0..3)", 3, 1, [300, 0]],
        ["ERR unknown command", 3, 1, [300, 0]],
        [None, 3, 1, [300, 0]],
        ["OK GPS", None, 1, [400, 1]],
    ]


def body_card_rides(root, salt, profile, now):
    import struct

    from firmware import bus, decision, risk, tapstate
    from protocol import crypto, fleet, record
    from protocol import profile as profiles

    d = decision.Decider(salt, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    d.use(fleet.KIND_PROFILE, profiles.parse(profile))
    d.state = tapstate.TapState(root)
    d.bus_stops = bus.BusStops()
    d.bus_stops.set_stop(1)
    out = []
    for n, later in ((1, 0), (2, 1800)):
        signed = d.amount_for(record.KIND_EMV_CONTACTLESS)  # what nfc.py gives the card to sign
        card = {"aid": b"\xa0\x00\x00\x03\x33\x01\x01\x01", "pan": "6228480000000000018", "expiry": "3012",
                "track2": None, "ac": bytes(8), "cid": b"\x80", "atc": bytes((0, n)), "iad": b"\x06\x01",
                "aip": b"\x00\x80", "un": bytes(4), "psn": b"\x00", "amount": signed}
        r = d.priced(d.decide_emv(card, now + later), now + later)
        ext = dict(r.extensions)
        card_amount = ext.get(record.EXT_CARD_AMOUNT)
        out.append([r.outcome, signed, r.amount, None if card_amount is None else struct.unpack("<I", card_amount)[0],
                    struct.unpack("<BI", ext[record.EXT_BUS_RULE])[0]])
        risk.commit(d, r, n, now + later)
    return out


def test_a_card_signs_the_fare_and_a_transfer_discount_charges_less_keeping_what_it_signed(runtime, tmp_path):
    import json

    from firmware import decision
    from protocol import busfare

    got = roomy(runtime).run(body_card_rides, str(tmp_path), SALT, json.dumps(BUS).encode(), NOW)
    # at B (stage 1) to the end of the line: 300; the same card half an hour later: 100 off, 300 signed
    assert got == [[decision.ACCEPT, 300, 300, None, busfare.RULE_FARE],
                   [decision.ACCEPT, 300, 200, 300, busfare.RULE_TRANSFER]]
