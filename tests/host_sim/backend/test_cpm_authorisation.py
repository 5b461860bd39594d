"""A CPM payment code from the terminal's decision to the issuer: the record the decision writes (card
data sealed, cryptogram context in clear) goes out as an ISO 8583 0100 with DE 55 built from the code's
data; the issuer of host_sim/issuers.py verifies 9F26 with the profile's keys.  A genuine wallet code is
approved, a forged one (accepted offline: it passes every check a terminal can make) is declined and
its card joins the deny list; the real-world UnionPay code is read into a request the same way."""

import pytest

from firmware import decision
from host_sim.backend import acquirer, acquirer_link, card_data, iso8583
from host_sim.backend.acquirer_host import AcquirerHost
from host_sim.emulators import wallet
from protocol import record
from tests.host_sim.helpers import TAP_TIME, TERMINAL, open_for_test, registered, seal_for_test
from tests.protocol import realworld


def cpm_record(seq, code, now=TAP_TIME):
    """The record the terminal writes for an accepted payment code, its card data sealed with the test key."""
    d = decision.Decider(b"salt" * 4, sealer=seal_for_test).decide(code, now)
    assert d.outcome == decision.ACCEPT, d.reason_text()
    raw = record.encode(TERMINAL, seq, now, d.kind, d.amount, 156, record.ACCEPTED, 0, 1, d.token, d.extensions)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def ask(rec):
    fields = acquirer_link.request(rec, card_data.card_data(None, rec, open_for_test), 1)
    return fields, iso8583.decode(AcquirerHost(acquirer.Acquirer()).respond(iso8583.encode(fields)))


@pytest.mark.parametrize("profile", sorted(wallet.ACCOUNTS))
def test_a_genuine_code_is_approved_and_a_forged_one_declined(profile):
    phone = wallet.Wallet(profile)
    fields, reply = ask(cpm_record(1, phone.show()))
    assert reply["39"] == iso8583.APPROVED, reply
    pan = wallet.ACCOUNTS[profile][0]
    assert fields["2"] == pan and fields["22"] == "032" and fields["23"] == "0" + wallet.ACCOUNTS[profile][1]
    icc = iso8583.icc_tags(fields["55"])
    assert icc[0x9F27] == b"\x80" and icc[0x9F36] == b"\x00\x01" and len(icc[0x9F26]) == 8
    assert icc[0x84] == wallet.ACCOUNTS[profile][2] and 0x9F10 in icc and 0x9F37 in icc and 0x82 in icc
    _, reply = ask(cpm_record(2, phone.show(forge=True)))
    assert (reply["39"], reply["44"]) == (iso8583.DO_NOT_HONOUR, "cryptogram failed")


def test_a_replayed_code_with_another_counter_fails_its_cryptogram():
    rec = cpm_record(1, wallet.code(atc=5))
    tags = card_data.card_data(None, rec, open_for_test)
    tags[0x9F36] = b"\x00\x06"
    fields = acquirer_link.request(rec, tags, 1)
    reply = iso8583.decode(AcquirerHost(acquirer.Acquirer()).respond(iso8583.encode(fields)))
    assert reply["39"] == iso8583.DO_NOT_HONOUR


def test_the_record_holds_no_card_data_in_clear_and_fits():
    code = wallet.code("unionpay-card", atc=300)
    rec = cpm_record(1, code)
    pan = wallet.ACCOUNTS["unionpay-card"][0]
    opened = card_data.card_data(None, rec, open_for_test)
    assert pan.encode() not in rec["raw"] and bytes.fromhex(pan[:18]) not in rec["raw"]
    assert opened[0x9F26] not in rec["raw"] and opened[0x57] not in rec["raw"]
    assert set(opened) == {0x57, 0x9F26, 0x9F27, 0x9F36, 0x9F37, 0x82, 0x9F10, 0x5F34}
    assert len(rec["raw"]) <= record.MAX_SIZE


def test_a_forged_code_is_declined_after_upload_and_its_card_joins_the_deny_list(tmp_path):
    store = registered(tmp_path)
    phone = wallet.Wallet("unionpay-hce")
    genuine, forged = cpm_record(1, phone.show()), cpm_record(2, phone.show(forge=True))
    store.store([genuine, forged])
    assert acquirer.authorise_pending(store, acquirer.Acquirer(), opener=open_for_test) == (1, 1, 1)
    assert store.query("SELECT seq, approved, reason FROM authorisations ORDER BY seq") == \
        [(1, 1, None), (2, 0, "cryptogram failed")]
    assert store.deny_list_since(0) == [(forged["token"], 1)]


@pytest.mark.skipif(realworld.DIR is None, reason=realworld.ABSENT)
def test_the_real_unionpay_code_becomes_a_request_from_its_own_data():
    code = realworld.load("qr.json")["cpm"]["unionpay_emv_qrcode_lib_test"]["payload"]
    rec = cpm_record(1, code, now=1700000000)  # November 2023: before its expiry
    fields, reply = ask(rec)
    assert fields["2"] == "6263600100713672" and fields["14"] == "2312" and fields["23"] == "000"
    icc = iso8583.icc_tags(fields["55"])
    assert icc[0x9F26] == bytes.fromhex("568AD7BCE66B718B") and icc[0x9F36] == b"\x11\x22"
    assert icc[0x84] == bytes.fromhex("A000000333010102")
    assert reply["39"] in (iso8583.NO_SUCH_ISSUER, iso8583.EXPIRED_CARD)  # no test issuer holds its keys


def test_the_issuer_checks_the_expiry_of_a_code_a_clockless_terminal_accepted():
    rec = cpm_record(1, wallet.code(expiry="2001"), now=0)  # the board's clock was never set
    _, reply = ask(rec)
    assert reply["39"] == iso8583.EXPIRED_CARD
