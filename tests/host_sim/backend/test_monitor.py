"""Monitoring: terminal health from STATUS and TIME (silent, queue, damage, quarantine, health bits, clock
drift) and one card token at many terminals in a short time, as alerts in a JSON feed."""

import json
import subprocess
import sys

from host_sim.backend import backoffice, host_session, monitor
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import link, record
from tests.host_sim.helpers import TERMINAL, ListeningTerminal, registered

WHEN = 1_796_000_000
CARD = b"\x07" * 16
CALM = b"\x08" * 16
EXT = ("quarantined", "damaged", "log_lines", "log_alerts")


def tap(terminal, seq, when, token):
    raw = record.encode(terminal, seq, when, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, record.REASON_NONE, 1,
                        token)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def kinds(alerts):
    return sorted(a["kind"] for a in alerts)


def test_a_healthy_terminal_raises_nothing_and_a_sick_one_raises_each_alert(db):
    store = registered(db=db)
    office = backoffice.Backoffice(store)
    host_ms = 1_800_000_000_000
    t = ListeningTerminal(host_session.Session(store, backoffice=office, wallclock=lambda: host_ms / 1000)).pump()
    t.peer.send(link.TIME, link.time_sync(1, host_ms + 300, 50))
    healthy = dict(dict.fromkeys(link.STATUS_FIELDS + link.STATUS_EXT_FIELDS + EXT, 0), health=0x0F, signal=-128)
    t.peer.send(link.STATUS, link.status(*[healthy[k] for k in link.STATUS_FIELDS],
                                         ext=[healthy[k] for k in link.STATUS_EXT_FIELDS + EXT]))
    t.pump()
    feed = monitor.feed(store, since=0)
    [row] = feed["terminals"]
    assert row["terminal"] == TERMINAL.hex() and row["drift_ms"] == 300 and row["health_clear"] == ["nfc"]
    assert row["silent_s"] is not None and row["silent_s"] < 60
    assert feed["alerts"] == []  # no reader fitted (NFC clear) is no alarm
    sick = dict(healthy, depth=900, health=0x1C, damaged=2, quarantined=3)
    t.peer.send(link.TIME, link.time_sync(2, host_ms - 5000, 50))
    t.peer.send(link.STATUS, link.status(*[sick[k] for k in link.STATUS_FIELDS],
                                         ext=[sick[k] for k in link.STATUS_EXT_FIELDS + EXT]))
    t.pump()
    alerts = monitor.feed(store, since=0)["alerts"]
    assert kinds(alerts) == ["clock", "damaged", "health", "quarantined", "queue"]
    health = [a for a in alerts if a["kind"] == "health"][0]
    assert health["detail"] == "not ok: journal, clock" and health["terminal"] == TERMINAL.hex()
    assert kinds(monitor.terminal_alerts(monitor.terminal_health(store), stale_s=1, depth=1000,
                                         drift_ms=10000)) == ["damaged", "health", "quarantined"]
    store.close()


def test_a_terminal_never_heard_from_is_silent(db):
    store = Store(db)
    store.register("aa00000000000001", b"k" * 16)
    [alert] = monitor.feed(store, since=0)["alerts"]
    assert (alert["kind"], alert["detail"]) == ("silent", "never heard from")
    store.close()


def test_one_token_at_many_terminals_in_a_short_time_is_a_velocity_alert(db):
    store = Store(db)
    terminals = [bytes([0xA0 + i]) + bytes(7) for i in range(4)]
    store.store([tap(terminals[i], 1, WHEN + 60 * i, CARD) for i in range(4)] +
                [tap(terminals[i], 2, WHEN + 3600 * i, CALM) for i in range(4)] +  # hours apart: a commuter
                [tap(terminals[0], 3, WHEN + 10, CALM)])
    [alert] = monitor.velocity_alerts(store, 0, window_s=600, terminals=3)
    assert alert["token"] == CARD.hex() and alert["kind"] == "velocity"
    assert alert["detail"].startswith("4 taps at 4 terminals within 180 s")
    assert monitor.velocity_alerts(store, 0, window_s=100, terminals=3) == []
    assert monitor.velocity_alerts(store, WHEN + 61, window_s=600, terminals=3) == []  # before --since: not looked at
    store.close()


def test_monitor_command_prints_the_feed_as_json_and_refuses_bad_limits(tmp_path):
    db = str(tmp_path / "c.db")
    store = Store(db)
    store.store([tap(bytes([0xA0 + i]) + bytes(7), 1, WHEN + i, CARD) for i in range(3)])
    store.close()
    run = subprocess.run([sys.executable, "-m", "host_sim", "monitor", "--db", db, "--json", "--since", "0"],
                         capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [a["kind"] for a in out["alerts"]] == ["velocity"] and out["terminals"] == []
    bad = subprocess.run([sys.executable, "-m", "host_sim", "monitor", "--db", db, "--window-s", "0"],
                         capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert bad.returncode != 0 and "not a positive number" in bad.stderr and "Traceback" not in bad.stderr
    out_dir = tmp_path / "out"
    rep = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", db, "--out", str(out_dir)],
                         capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert rep.returncode == 0, rep.stderr
    page = (out_dir / "reconciliation.html").read_text()
    assert "<h2>Monitoring</h2>" in page and "id='alerts'" in page and "id='health'" in page
    assert (out_dir / "alerts.csv").read_text().startswith(",".join(monitor.ALERT_COLUMNS))
