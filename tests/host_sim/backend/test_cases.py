"""Complaints: a case opened on a transaction, resolved by a refund (an 0400 to the acquirer, deducted in
settlement), by re-enabling the card, or rejected; bad requests refused with a reason, nothing changed."""

import json
import subprocess
import sys

import pytest

from host_sim.backend import acquirer, acquirer_host, acquirer_link, cases, iso8583, report
from host_sim.backend.store import Store
from host_sim.tools import build
from protocol import record

TERMINAL = bytes.fromhex("5642000001000000")
REF = TERMINAL.hex()
WHEN = 1_796_000_000
CARD = b"\x07" * 16
OTHER = b"\x08" * 16


def tap(seq, amount, token=CARD, when=WHEN, decision=record.ACCEPTED):
    raw = record.encode(TERMINAL, seq, when, record.KIND_QR_CPM, amount, 156, decision,
                        record.REASON_NONE if decision == record.ACCEPTED else 1, 1, token,
                        [(record.EXT_ATC, seq.to_bytes(2, "big"))])
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


class Recording:
    """A LocalLink to an in-process acquirer host that keeps the messages it carried."""

    def __init__(self):
        self.inner = acquirer_link.LocalLink(acquirer_host.AcquirerHost(acquirer.Acquirer()))
        self.stan = self.inner.stan
        self.sent = []

    def exchange(self, message):
        self.sent.append(iso8583.decode(message))
        return self.inner.exchange(message)

    def close(self):
        pass


def settled(db, seqs=(1, 2, 3), declined_token=OTHER):
    """A store with taps 1..3 of 200 fen authorised (the OTHER card's declined, so it is deny-listed)."""
    store = Store(db)
    store.store([tap(1, 200), tap(2, 200, when=WHEN + 3600), tap(3, 200, token=OTHER)])
    acquirer.authorise_pending(store, acquirer.Acquirer({"decline_tokens": [declined_token.hex()]}))
    return store


def test_a_refund_goes_to_the_acquirer_as_an_0400_and_is_deducted_in_settlement(db):
    store = settled(db)
    before = report.reconcile(store)[0]
    case = cases.open_case(store, "charged but the bus never came", ref="%s:1" % REF)
    found = cases.show(store, case)[0]["found"]
    assert found["record"]["seq"] == 1 and found["record"]["amount_fen"] == 200
    assert found["issuer"]["approved"] is True and found["deny_list"]["listed"] is False
    link = Recording()
    cases.refund(store, case, 150, link)
    [sent] = link.sent
    assert sent["t"] == iso8583.REVERSAL_REQUEST and sent["4"] == "%012d" % 150
    assert sent["37"] == acquirer_link.reference(REF.upper(), 1)  # the transaction's own RRN
    assert link.inner.host.reversed == {sent["37"]}
    after = report.reconcile(store)[0]
    assert (after["refunded"], after["refunded_fen"]) == (1, 150)
    assert after["net_settlement_fen"] == before["net_settlement_fen"] - 150
    shown = cases.show(store, case)[0]
    assert (shown["status"], shown["resolution"], shown["refund_fen"]) == ("resolved", "refund", 150)
    assert [s["action"] for s in shown["steps"]] == ["opened", "refund sent", "resolved: refund"]
    assert shown["resolve_s"] is not None and shown["resolve_s"] >= 0 and all(s["at"] for s in shown["steps"])
    store.close()


def test_double_refund_too_large_a_refund_and_unknown_transactions_are_refused(db):
    store = settled(db)
    with pytest.raises(cases.CaseRefused, match="no transaction"):
        cases.open_case(store, "", ref="%s:99" % REF)
    with pytest.raises(cases.CaseRefused, match="no accepted tap"):
        cases.open_case(store, "", token=CARD.hex(), when=WHEN + 86400)
    case = cases.open_case(store, "", token=CARD.hex(), when=WHEN + 3000)  # nearest: seq 2
    assert cases.show(store, case)[0]["seq"] == 2
    link = Recording()
    with pytest.raises(cases.CaseRefused, match="larger than the fare"):
        cases.refund(store, case, 201, link)
    assert link.sent == [] and store.refunded() == {}
    cases.refund(store, case, 200, link)
    again = cases.open_case(store, "once more", ref="%s:2" % REF)
    with pytest.raises(cases.CaseRefused, match="refunded already"):
        cases.refund(store, again, 10, link)
    with pytest.raises(cases.CaseRefused, match="resolved already"):
        cases.reject(store, case, "late")
    assert len(link.sent) == 1 and store.refunded() == {(REF, 2): 200}
    declined_by_acquirer = cases.open_case(store, "", ref="%s:3" % REF)
    with pytest.raises(cases.CaseRefused, match="declined by the acquirer"):
        cases.refund(store, declined_by_acquirer, 100, link)
    store.close()


def test_an_unreachable_acquirer_refunds_nothing_and_leaves_the_case_open(db):
    store = settled(db)
    case = cases.open_case(store, "", ref="%s:1" % REF)

    class Down(Recording):
        def exchange(self, message):
            raise acquirer_link.AcquirerUnavailable("connection refused")

    with pytest.raises(cases.CaseRefused, match="nothing refunded"):
        cases.refund(store, case, 100, Down())
    assert store.refunded() == {} and store.refund(REF, 1) is None
    assert cases.show(store, case)[0]["status"] == "open"
    cases.refund(store, case, 100, Recording())  # once it answers, the refund goes through
    assert store.refunded() == {(REF, 1): 100}
    store.close()


def test_re_enable_takes_the_card_off_the_deny_list_and_reject_keeps_the_reason(db):
    store = settled(db)
    case = cases.open_case(store, "my card is blocked", ref="%s:3" % REF)
    assert cases.show(store, case)[0]["found"]["deny_list"]["listed"] is True
    version = store.deny_list_version()
    cases.re_enable(store, case, "issuer confirmed")
    assert store.deny_changes_since(version) == [(OTHER, version + 1, False)]  # a removal for the fleet
    assert cases.show(store, case)[0]["resolution"] == "re-enable"
    other = cases.open_case(store, "", ref="%s:1" % REF)
    with pytest.raises(cases.CaseRefused, match="not on the deny list"):
        cases.re_enable(store, other, "x")
    with pytest.raises(cases.CaseRefused, match="needs a reason"):
        cases.reject(store, other, " ")
    cases.reject(store, other, "the fare was right")
    shown = cases.show(store, other)[0]
    assert (shown["resolution"], shown["reason"]) == ("reject", "the fare was right")
    store.close()


def _case(*args):
    return subprocess.run([sys.executable, "-m", "host_sim", "case", *args], capture_output=True, text=True,
                          cwd=build.ROOT, timeout=60)


def test_case_command_opens_refunds_and_refuses_with_one_line(tmp_path):
    db = str(tmp_path / "c.db")
    settled(db).close()
    opened = _case("open", "--db", db, "--ref", "%s:1" % REF, "--complaint", "charged twice")
    assert opened.returncode == 0, opened.stderr
    case = json.loads(opened.stdout)
    assert case["status"] == "open" and case["found"]["record"]["amount_fen"] == 200
    too_much = _case("resolve", "--db", db, "--case", str(case["id"]), "--refund", "500")
    assert too_much.returncode == 1 and too_much.stderr.strip().count("\n") == 0
    assert "larger than the fare" in too_much.stderr and "Traceback" not in too_much.stderr
    done = _case("resolve", "--db", db, "--case", str(case["id"]), "--refund", "200")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resolution"] == "refund"
    unknown = _case("open", "--db", db, "--ref", "%s:42" % REF)
    assert unknown.returncode == 1 and "no transaction" in unknown.stderr
    shown = _case("show", "--db", db)
    assert [c["id"] for c in json.loads(shown.stdout)] == [case["id"]]
    out = tmp_path / "out"
    rep = subprocess.run([sys.executable, "-m", "host_sim", "report", "--db", db, "--out", str(out)],
                         capture_output=True, text=True, cwd=build.ROOT, timeout=60)
    assert rep.returncode == 0, rep.stderr
    page = (out / "reconciliation.html").read_text()
    assert "id='cases'" in page and "charged twice" in page
