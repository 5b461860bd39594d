"""The passengers of a scenario: the credential mix, hourly rates, profiles, parties and the school's
pupils, drawn from the seed; every mistake refused with the file, line and key."""

import collections
import json

import pytest

from host_sim.sim import passengers, scenario
from protocol import profile as profiles

BUS = """\
[scenario]
name = "route"
date = "2026-12-04"

[[terminals]]
name = "route7"
profile = "bus"

[profiles.bus.bus]
fare = "stage"
default_fen = 400
fares_fen = [100, 200, 300]

[timeline]
runs = ["06:30", "09:00"]

[[stops]]
name = "Xiacun"
dwell_s = 3600
boardings = 8.0

[[stops]]
name = "Market"
travel_s = 600
dwell_s = 60
zone = 2
boardings = 4.0

[passengers]
rates = { "07" = 0.0, "09" = 2.0 }
mix = { cpm = 1, card = 1, hce = 1, ride = 1, paycode = 1, forged = 1, denylisted = 1, expired = 1, garbage = 1 }
"""

GATE = """\
[scenario]
name = "gate"
date = "2026-10-02"

[[terminals]]
name = "gate"
profile = "scenic"

[profiles.scenic.scenic]
passback_s = 600

[timeline]
runs = ["08:00"]

[[stops]]
name = "open"
dwell_s = 7200
boardings = 30.0

[passengers]
party = { "1" = 1, "4" = 1 }
passback = 0.5
mix = { ticket = 1 }
"""

SCHOOL = """\
[scenario]
name = "school"
date = "2026-12-07"

[[terminals]]
name = "school"
profile = "school"

[profiles.school.school]
product = 50

[timeline]
runs = ["07:00", "16:00"]

[[stops]]
name = "Dongcun"
dwell_s = 90
boardings = 6.0

[[stops]]
name = "School"
travel_s = 600
dwell_s = 120
boardings = 0.0

[passengers]
pupils = 10
off_roster = 0.2
mix = { ticket = 1 }
"""


def test_the_bus_profile_takes_its_stops_and_stages_from_the_scenario():
    sc = scenario.parse("s.toml", BUS)
    body = passengers.profile_body(sc, "bus", "route7")
    assert [(s["name"], s["stage"]) for s in body["bus"]["stops"]] == [("Xiacun", 0), ("Market", 2)]
    assert profiles.parse(json.dumps(body).encode())["group"] == "route7"


def test_every_credential_kind_is_drawn_and_the_same_seed_gives_the_same_taps():
    sc = scenario.parse("s.toml", BUS)
    taps = passengers.schedule(sc, 1)
    assert {t[2] for t in taps} == set(passengers.CREDENTIALS) - {"ticket"}
    assert [t[:3] + (t[4],) for t in passengers.schedule(sc, 1)] == [t[:3] + (t[4],) for t in taps]
    assert [t[0] for t in passengers.schedule(sc, 2)] != [t[0] for t in taps]
    nfc = {t[3] for t in taps if t[2] in ("card", "hce")}
    assert {n[:2] for n in nfc} <= {("nfc", p) for p in passengers.NFC["card"] + passengers.NFC["hce"]}
    assert len({n[2] for n in nfc}) > 1  # passengers' own cards, each with its own number
    assert all(isinstance(t[3], str) for t in taps if t[2] not in ("card", "hce"))


def test_hourly_rates_multiply_the_stop_visits_share_of_each_hour():
    sc = scenario.parse("s.toml", BUS)
    counts = collections.Counter()
    for seed in range(40):
        for t in passengers.schedule(sc, seed):
            if t[4] == 0:
                counts[(t[0] - sc["midnight"]) // 3600] += 1
    # the 06:30-07:30 visit: half in hour 06 (rate 1), half in hour 07 (rate 0); the 09:00 visit at rate 2
    assert counts[7] == 0
    assert 0.75 < counts[9] / (counts[6] * 4) < 1.25


def test_a_group_ticket_is_shown_once_per_person_and_a_handed_back_ticket_comes_back():
    sc = scenario.parse("s.toml", GATE)
    taps = passengers.schedule(sc, 1)
    shown = collections.Counter(t[3][1] for t in taps)
    parties = {t[3][1]: (t[3][2], t[3][3]) for t in taps}
    assert {shown[tid] for tid, (party, _) in parties.items() if party == 4} == {4}
    back = [tid for tid, (party, entries) in parties.items() if entries == 0]
    assert back and all(shown[tid] == 2 and parties[tid][0] == 1 for tid in back)


def test_pupils_ride_to_school_and_home_again_and_strangers_are_drawn():
    sc = scenario.parse("s.toml", SCHOOL)
    taps = passengers.schedule(sc, 2)
    afternoon = sc["midnight"] + 16 * 3600
    morning = [(t[0], t[3][1], t[4]) for t in taps if t[0] < afternoon]
    home = [(t[0], t[3][1], t[4]) for t in taps if t[0] >= afternoon]
    roster = {passengers.pupil_id("school", n) for n in range(10)}
    board = [p for _, p, stop in morning if stop == 0]
    pupils = sorted(p for p in board if p in roster)
    assert pupils and any(p not in roster for p in board)
    assert sorted(p for _, p, stop in morning if stop == 1) == pupils  # alighting at the school
    # home: the route backwards, boarding at the school first, alighting where they boarded
    assert sorted(p for _, p, stop in home if stop == 1) == pupils
    assert sorted(p for _, p, stop in home if stop == 0) == pupils
    assert max(t for t, _, stop in home if stop == 1) < min(t for t, _, stop in home if stop == 0)


@pytest.mark.parametrize("text, old, new, where", [
    (BUS, 'mix = { cpm = 1,', 'mix = { coins = 1,', "s.toml:31: passengers.mix: unknown credential 'coins'"),
    (BUS, '"09" = 2.0', '"09" = -2.0', "s.toml:30: passengers.rates: rate of hour 09 must be a number >= 0"),
    (BUS, '"09" = 2.0', '"9am" = 2.0', "s.toml:30: passengers.rates: '9am' is not an hour"),
    (BUS, 'fares_fen = [100, 200, 300]', 'fares_fen = [100, 200]',
     "s.toml:9: profiles.bus: bus: fares_fen has 2 fares, the stops span 3 stages"),
    (BUS, '[profiles.bus.bus]', '[profiles.ferry.bus]', "s.toml:9: profiles.ferry: no such profile"),
    (BUS, 'zone = 2', 'zone = 40', "s.toml:26: stops[1].zone: zones and stages run 0..31"),
    (GATE, 'passback = 0.5', 'passback = 1.5', "s.toml:22: passengers.passback: is a share"),
    (GATE, '"4" = 1', '"40" = 1', "s.toml:21: passengers.party: '40' is not a party size"),
    (SCHOOL, 'pupils = 10', 'pupils = -1', "s.toml:27: passengers.pupils: must not be negative"),
    (SCHOOL, '[profiles.school.school]', '[profiles.scenic.scenic]\npassback_s = 600\n\n[profiles.school.school]',
     "s.toml:9: profiles.scenic: no terminal runs this profile"),
])
def test_a_passenger_or_profile_mistake_is_refused_with_the_file_line_and_key(text, old, new, where):
    assert old in text
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.parse("s.toml", text.replace(old, new, 1))
    assert str(e.value).startswith(where), str(e.value)


def test_a_payment_is_one_tap_per_counter_and_a_ticket_pass_or_ride_code_one_per_showing():
    from protocol import record

    def same(kind, atc):
        return passengers.tap_key(b"T" * 16, atc, kind, 100) == passengers.tap_key(b"T" * 16, atc, kind, 160)

    assert same(record.KIND_QR_CPM, b"\x00\x07") and same(record.KIND_EMV_CONTACTLESS, b"\x00\x07")
    assert not same(record.KIND_TICKET, b"\x00\x01") and not same(record.KIND_SCHOOL_PASS, b"\x00\x01")
    assert not same(record.KIND_RIDE_CODE, None)
