"""The collector session beyond storage: the acquirer's declines (decided after the records were stored)
become a signed deny-list delta offered in the same session, sent from the offset the terminal holds,
rebased to the version it has; TIME is answered from the collector's clock; STATUS heartbeats are kept
per terminal."""

import hashlib
import logging

from host_sim.backend import acquirer, backoffice, host_session
from protocol import bundle, link
from tests.host_sim.helpers import BAD, GOOD, KEY, TERMINAL, ListeningTerminal, registered, tap_record


def session(store, rules, **kw):
    return host_session.Session(store, backoffice=backoffice.Backoffice(store, acquirer.Acquirer(rules)), **kw)


def authorise(t):
    """The collector's authorisation worker makes one pass; the session offers what it declined."""
    t.session.backoffice.authorise_pending()
    return t.pump()


def test_a_decline_is_offered_as_a_signed_delta_and_sent_from_the_terminals_offset(db):
    store = registered(db=db)
    t = ListeningTerminal(session(store, {"decline_atcs": [41]})).pump()
    assert t.take("CONFIG_OFFER") == []  # nothing declined yet
    t.upload([tap_record(1, BAD, 41), tap_record(2, GOOD, 7)])
    assert t.take("CONFIG_OFFER") == []  # stored and acknowledged; not authorised yet
    [offer] = authorise(t).take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (bundle.KIND_DENY, 1)
    key = bundle.config_key(KEY)
    assert bundle.verify(key, offer["kind"], offer["version"], offer["size"], offer["digest"], offer["signature"])
    # The terminal already holds 10 bytes (a download cut short): chunks start there.
    t.answer(1, 10)
    chunks = t.take("CONFIG_CHUNK")
    assert chunks[0]["offset"] == 10 and sum(len(c["data"]) for c in chunks) == offer["size"] - 10
    t.answer(1, 0)
    data = b"".join(c["data"] for c in sorted(t.take("CONFIG_CHUNK"), key=lambda c: c["offset"]))
    assert hashlib.sha256(data).digest() == offer["digest"]
    assert bundle.deny_head(data, len(data)) == (0, 1, 1, 0) and data[bundle.HEAD:] == BAD
    t.answer(1, offer["size"])  # applied
    assert store.query("SELECT version FROM config_delivered WHERE kind = ?", (bundle.KIND_DENY,)) == [(1,)]
    # A new session of the same terminal has nothing to offer; a second decline offers 1 -> 2.
    t2 = ListeningTerminal(session(store, {"decline_atcs": [41, 42]})).pump()
    assert t2.take("CONFIG_OFFER") == []
    t2.upload([tap_record(3, GOOD, 42)])
    [offer] = authorise(t2).take("CONFIG_OFFER")
    t2.answer(2, 0)
    data = b"".join(c["data"] for c in t2.take("CONFIG_CHUNK"))
    assert bundle.deny_head(data, len(data)) == (1, 2, 1, 0)


def test_a_terminal_behind_the_collectors_belief_is_rebased(db):
    store = registered(db=db)
    office = backoffice.Backoffice(store, acquirer.Acquirer({"decline_atcs": [1, 2]}))
    s = host_session.Session(store, backoffice=office)
    office.delivered(TERMINAL.hex(), bundle.KIND_DENY, 1)  # we think it has version 1
    t = ListeningTerminal(s).pump()
    t.upload([tap_record(1, BAD, 1), tap_record(2, GOOD, 2)])
    [offer] = authorise(t).take("CONFIG_OFFER")
    t.answer(2, 0)
    data = b"".join(c["data"] for c in t.take("CONFIG_CHUNK"))
    assert bundle.deny_head(data, len(data))[:2] == (1, 2)
    t.answer(0, bundle.REBASE)  # "I hold version 0" (its flash was replaced)
    [offer] = t.take("CONFIG_OFFER")
    t.answer(2, 0)
    data = b"".join(c["data"] for c in t.take("CONFIG_CHUNK"))
    assert bundle.deny_head(data, len(data)) == (0, 2, 2, 0)


def test_time_is_answered_and_status_kept_per_terminal(db):
    store = registered(db=db)
    t = ListeningTerminal(session(store, None, wallclock=lambda: 1_800_000_000.5)).pump()
    t.peer.send(link.TIME, link.time_sync(1234, 0, 0xFFFFFFFF))
    values = dict(depth=7, health=3, signal=-71, crc_errors=2, mac_errors=0, replays=1, retransmits=5,
                  uptime_s=99, journal_free=4096, journal_dropped=1, reconnects=3, deny_version=2,
                  quarantined=4, damaged=5, log_lines=40, log_alerts=6)
    t.peer.send(link.STATUS, link.status(*[values[k] for k in link.STATUS_FIELDS],
                                         ext=[values[k] for k in link.STATUS_EXT_FIELDS + (
                                             "quarantined", "damaged", "log_lines", "log_alerts")]))
    t.pump()
    [answer] = t.take("TIME")
    assert (answer["echo"], answer["unix_ms"], answer["bound_ms"]) == (1234, 1_800_000_000_500,
                                                                       host_session.HOST_TIME_BOUND_MS)
    assert store.latest_status(TERMINAL.hex()) == values
    values["depth"] = 0
    t.peer.send(link.STATUS, link.status(*[values[k] for k in link.STATUS_FIELDS]))  # the short v1 form
    t.pump()
    latest = store.latest_status(TERMINAL.hex())
    assert latest["depth"] == 0 and latest["journal_free"] is None
    assert store.query("SELECT COUNT(*) FROM terminal_status") == [(1,)]


def test_status_health_bits_are_logged_by_name(db, caplog):
    store = registered(db=db)
    t = ListeningTerminal(session(store, None)).pump()
    caplog.set_level(logging.INFO, logger="collector")
    t.peer.send(link.STATUS, link.status(4, link.HEALTH_JOURNAL | link.HEALTH_SCANNER | link.HEALTH_NFC, -128,
                                         0, 0, 0, 0, 5))
    t.pump()
    assert "depth 4 health 0x19 (journal scanner nfc)" in caplog.text
    assert backoffice.health_names(0x06) == ["clock", "config"] and backoffice.health_names(0) == []
