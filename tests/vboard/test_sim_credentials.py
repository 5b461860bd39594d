"""`sim run` with profiles and the full credential mix on virtual boards: a bus with stage fares set from its
stops by the driver display and a scenic gate with the run's signed tickets, passengers with phones, cards
and phones over NFC, ride codes, payment codes authorised online, deny-listed and forged cards; every
accepted tap stored once, the subsidy of the settlement's rule, and the same digest for the same seed."""

from host_sim.backend import promotions, report
from host_sim.backend.store import Store
from host_sim.sim import passengers, run, scenario
from protocol import record

SCENARIO = """\
[scenario]
name = "bus and gate"
date = "2026-12-04"
seed = 30

[[terminals]]
name = "bus"
profile = "bus"

[[terminals]]
name = "gate"
profile = "scenic"

[profiles.bus.bus]
fare = "stage"
default_fen = 500
fares_fen = [100, 200, 300]

[[profiles.bus.promotions]]
id = 7
kinds = ["qr_cpm", "ride_code"]
chance_ppm = 500000              # half the draws granted: the same ones for the same seed
discount_fen = 50
terminal_daily_fen = 2000
programme_daily_fen = 100000
from = "2026-12-01"
until = "2026-12-31"

[profiles.scenic.scenic]
passback_s = 600

[timeline]
runs = ["07:00"]

[[stops]]
name = "A"
dwell_s = 120
boardings = 7.0

[[stops]]
name = "M"
travel_s = 600
dwell_s = 120
zone = 1
boardings = 5.0

[[stops]]
name = "B"
travel_s = 600
dwell_s = 60
zone = 2
boardings = 1.0

[passengers]
party = { "1" = 1, "3" = 1 }

[passengers.mix]
cpm = 4
card = 1
hce = 1
ticket = 2
ride = 1
paycode = 1
forged = 0.5
denylisted = 1
expired = 0.5
garbage = 0.5
"""


def _run(tmp_path, name, seed):
    workdir = tmp_path / name
    workdir.mkdir()
    summary = run.simulate(scenario.parse("s.toml", SCENARIO), seed, str(workdir))
    return summary, str(workdir / "collector.db")


def test_profiles_and_every_credential_on_the_boards(tmp_path):
    sc = scenario.parse("s.toml", SCENARIO)
    taps = run.schedule(sc, 30)
    assert {t[2] for t in taps} == set(passengers.CREDENTIALS)
    first, db = _run(tmp_path, "a", 30)
    assert first["lost"] == 0 and first["duplicates"] == 0 and first["taps"] == len(taps)
    by = first["by_credential"]
    assert sum(c["taps"] for c in by.values()) == len(taps)
    for kind in ("cpm", "card", "hce", "ticket", "ride", "paycode"):
        assert by[kind]["accepted"] > 0, (kind, by)
    assert by["denylisted"]["taps"] > 0 and by["denylisted"]["accepted"] == 0
    assert by["garbage"]["accepted"] == by["expired"]["accepted"] == 0
    assert first["declines"]["card blocked"] > 0
    assert first["issuer_declined"] == by["forged"]["accepted"]  # the passengers' own cards are genuine
    store = Store(db)
    try:
        settled = sum(r["subsidy_fen"] for r in report.reconcile(store))
        discounts = sum(r["discount_fen"] for r in promotions.spend(store))
        assert settled > 0 and discounts > 0 and first["promotion_fen"] == discounts
        assert first["subsidy_fen"] == settled + discounts
        bus = store.query("SELECT MIN(terminal) FROM terminals")[0][0]  # bus-1: the first board's id
        fares = store.query("SELECT time, amount FROM records WHERE terminal = ? AND decision = ? AND "
                            "kind IN (?, ?, ?, ?)",
                            (bus, record.ACCEPTED, record.KIND_QR_CPM, record.KIND_EMV_CONTACTLESS,
                             record.KIND_RIDE_CODE, record.KIND_PAYMENT_CODE))
        tickets = store.query("SELECT COUNT(*) FROM records WHERE kind = ? AND decision = ?",
                              (record.KIND_TICKET, record.ACCEPTED))[0][0]
    finally:
        store.close()
    assert tickets > 0
    # stage fares by stop (tap-on: to the farther end of the line): at A (stage 0) 3.00, at M (stage 1) 2.00
    m_arrives = sc["runs"][0] + 120 + 600
    paid = {("A" if when < m_arrives else "M" if when < m_arrives + 120 else "B", amount) for when, amount in fares}
    assert {stop for stop, _ in paid} >= {"A", "M"}, paid
    fare = {"A": 300, "M": 200, "B": 300}
    assert all(amount in (fare[stop], fare[stop] - 50) for stop, amount in paid), paid  # 0.50 off: promotion

    again, _ = _run(tmp_path, "b", 30)
    # the digest covers every amount charged: the same discounts were drawn, half the chances granted
    assert again["digest"] == first["digest"] and again["by_credential"] == by
    assert again["promotion_fen"] == first["promotion_fen"]
    promoted = first["promotion_fen"] // 50
    assert 0 < promoted < by["cpm"]["accepted"] + by["ride"]["accepted"]
