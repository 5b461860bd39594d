"""Online authorisation of payment codes at the collector (host_sim/backend/online.py): an ONLINE_REQUEST
goes to the acquirer host as an 0200 and comes back as ONLINE_RESULT within its deadline; a slow issuer
gets "unavailable" and its late approval is reversed (0400); an approval the terminal declined anyway is
reversed when its record arrives; an online record is never sent for deferred authorisation again."""

import struct
import time

from host_sim import paycodes
from host_sim.backend import acquirer, backoffice, host_session
from protocol import link, paycode, record
from tests.host_sim.helpers import TERMINAL, ListeningTerminal, registered


def online_terminal(store, delay_ms=0):
    office = backoffice.Backoffice(store, acquirer.Acquirer())
    office.link.host.delay_ms = delay_ms
    return ListeningTerminal(host_session.Session(store, backoffice=office)).pump(), office


def ask(t, rid, code, deadline_ms=2000, amount=200):
    t.peer.send(link.ONLINE_REQUEST, link.online_request(rid, paycode.classify(code)[0], amount, 156, deadline_ms,
                                                         code.encode()), 0)
    return t.pump()


def result(t, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = t.take("ONLINE_RESULT")
        if got:
            return got
        time.sleep(0.01)
        t.pump()
    return []


def wait_row(office, rid, want, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = [r for r in office.online.rows() if r["request_id"] == rid]
        if rows and rows[0]["result"] == want:
            return rows[0]
        time.sleep(0.02)
    raise AssertionError("request %d never became %s: %r" % (rid, want, office.online.rows()))


def test_a_valid_code_is_approved_and_an_invalid_one_declined(tmp_path):
    store = registered(tmp_path)
    t, office = online_terminal(store)
    good = paycodes.make(paycode.UNIONPAY)
    [res] = result(ask(t, 10, good))
    assert (res["request_id"], res["result"]) == (10, link.ONLINE_APPROVED)
    assert len(res["approval"]) == 6 and len(res["reference"]) == 12
    row = wait_row(office, 10, "approved")
    assert row["code_masked"] == paycode.masked(good) and row["family"] == "unionpay"
    [res] = result(ask(t, 11, paycodes.make(paycode.WECHAT, invalid=True)))
    assert (res["result"], res["reason"]) == (link.ONLINE_DECLINED, "invalid code")
    [res] = result(ask(t, 12, paycodes.make(paycode.ALIPAY), amount=paycodes.MAX_AMOUNT + 1))
    assert (res["result"], res["reason"]) == (link.ONLINE_DECLINED, "insufficient funds")
    dump = b"".join(bytes(str(r), "utf-8") for r in store.query("SELECT * FROM online_auth"))
    assert good.encode() not in dump  # only the masked code is kept


def test_a_slow_issuer_is_answered_unavailable_and_its_late_approval_reversed(tmp_path):
    store = registered(tmp_path)
    t, office = online_terminal(store, delay_ms=900)
    [res] = result(ask(t, 20, paycodes.make(paycode.UNIONPAY), deadline_ms=1000))
    assert (res["result"], res["reason"]) == (link.ONLINE_UNAVAILABLE, "acquirer timeout")
    row = wait_row(office, 20, "reversed")
    assert row["reason"] == "approved after the deadline"
    assert len(office.link.host.reversed) == 1


def test_an_approval_the_terminal_declined_is_reversed_when_its_record_arrives(tmp_path):
    store = registered(tmp_path)
    t, office = online_terminal(store)
    code = paycodes.make(paycode.UNIONPAY)
    [res] = result(ask(t, 30, code))
    assert res["result"] == link.ONLINE_APPROVED
    wait_row(office, 30, "approved")
    ext = struct.pack("<BBI", record.PATH_ONLINE, paycode.UNIONPAY, 30)
    declined = record.encode(TERMINAL, 30, 1_800_000_000, record.KIND_PAYMENT_CODE, 200, 156, record.DECLINED,
                             record.REASON_PAYCODE_NO_ANSWER, 0, bytes(16), [(record.EXT_PAYCODE, ext)])
    t.upload([declined])
    row = wait_row(office, 30, "reversed")
    assert row["reason"].startswith("the terminal declined it")


def test_an_online_record_is_not_authorised_twice(tmp_path):
    store = registered(tmp_path)
    t, office = online_terminal(store)
    ext = struct.pack("<BBI", record.PATH_ONLINE, paycode.UNIONPAY, 40) + b"123456" + b"000000000040"
    accepted = record.encode(TERMINAL, 40, 1_800_000_000, record.KIND_PAYMENT_CODE, 200, 156, record.ACCEPTED, 0,
                             1, bytes(16), [(record.EXT_PAYCODE, ext)])
    t.upload([accepted])
    sent = []
    exchange = office.link.exchange
    office.link.exchange = lambda m: sent.append(m) or exchange(m)
    office.authorise_pending()
    assert sent == []
    assert store.query("SELECT approved, reason FROM authorisations WHERE seq = 40") == [(1, "authorised online")]


def test_without_an_acquirer_the_answer_is_unavailable(tmp_path):
    store = registered(tmp_path)
    t = ListeningTerminal(host_session.Session(store, backoffice=backoffice.Backoffice(store))).pump()
    [res] = result(ask(t, 50, paycodes.make(paycode.UNIONPAY)))
    assert (res["result"], res["reason"]) == (link.ONLINE_UNAVAILABLE, "no acquirer")


def test_the_report_lists_online_authorisations_and_reversals(tmp_path):
    import json
    import subprocess
    import sys

    store = registered(tmp_path)
    t, office = online_terminal(store, delay_ms=900)
    result(ask(t, 60, paycodes.make(paycode.UNIONPAY), deadline_ms=1000))
    wait_row(office, 60, "reversed")
    store.close()
    out = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", str(tmp_path / "c.db"), "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["online"], summary["online_reversed"]) == (1, 1)
    text = (tmp_path / "r" / "online.csv").read_text()
    assert "reversed" in text and "approved after the deadline" in text


def test_over_tcp_a_slow_acquirer_host_gets_its_late_approval_reversed(tmp_path):
    import json
    import subprocess
    import sys

    from host_sim.backend import acquirer_link

    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "acquirer-host", "--listen", "127.0.0.1:0",
                             "--delay-ms", "700"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = json.loads(proc.stdout.readline())["listen"]
        store = registered(tmp_path)
        office = backoffice.Backoffice(store, acquirer_link.TcpLink(address))
        t = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
        [res] = result(ask(t, 70, paycodes.make(paycode.UNIONPAY), deadline_ms=3000))  # 700 ms < 2500 ms budget
        assert res["result"] == link.ONLINE_APPROVED
        [res] = result(ask(t, 71, paycodes.make(paycode.UNIONPAY), deadline_ms=1000))  # 700 ms > 500 ms budget
        assert res["result"] == link.ONLINE_UNAVAILABLE
        assert wait_row(office, 71, "reversed")["reason"] == "approved after the deadline"
        assert wait_row(office, 70, "approved")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "0400 RRN" in err and "reversed" in err


def deferred_record(seq, code):
    """The record a terminal with policy "defer" writes for `code` with its link down."""
    from firmware import decision
    from tests.host_sim.helpers import TAP_TIME, seal_for_test

    decider = decision.Decider(b"salt" * 4, sealer=seal_for_test)
    d = decider.decide_offline(decider.decide(code), decision.POLICY_DEFER, 500)
    assert d.outcome == decision.ACCEPT, d.reason_text()
    raw = record.encode(TERMINAL, seq, TAP_TIME, d.kind, d.amount, 156, record.ACCEPTED, 0, 1, d.token, d.extensions)
    assert code.encode() not in raw
    return raw


def test_a_deferred_code_is_authorised_later_from_its_sealed_digits(tmp_path):
    from tests.host_sim.helpers import open_for_test

    store = registered(tmp_path)
    office = backoffice.Backoffice(store, acquirer.Acquirer(), opener=open_for_test)
    t = ListeningTerminal(host_session.Session(store, backoffice=office)).pump()
    t.upload([deferred_record(80, paycodes.make(paycode.ALIPAY)),
              deferred_record(81, paycodes.make(paycode.ALIPAY, invalid=True))])
    sent = []
    exchange = office.link.exchange
    office.link.exchange = lambda m: sent.append(m) or exchange(m)
    office.authorise_pending()
    assert store.query("SELECT seq, approved, reason FROM authorisations ORDER BY seq") == [
        (80, 1, None), (81, 0, "invalid code")]
    from host_sim.backend import iso8583
    fields = [iso8583.decode(m) for m in sent]
    assert [f["t"] for f in fields] == ["0200", "0200"]
    assert all(iso8583.private_elements(f["48"])["DA"] == "1" for f in fields)
