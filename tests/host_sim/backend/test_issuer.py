"""The issuer simulation checks the application cryptogram of every deferred transaction: a card's own
cryptogram (host_sim/issuers.py, the function every emulated card uses) is approved; a forged one, or
the same tap with its amount, ATC, unpredictable number or PAN altered, is declined and its card joins
the deny list.  The acquirer's rules still apply after the card passed."""

import pytest

from host_sim import issuers
from host_sim.backend import acquirer, acquirer_link, iso8583
from host_sim.backend.acquirer_host import AcquirerHost
from tests.host_sim.helpers import card_read, contactless_record, open_for_test, registered


def ask(fields, rules=None):
    """The 0110 fields the acquirer host answers to request `fields` (encoded and decoded on the way)."""
    reply = AcquirerHost(acquirer.Acquirer(rules)).respond(iso8583.encode(fields))
    return iso8583.decode(reply)


def request_for(card, seq=1, **changes):
    rec = contactless_record(seq, card)
    fields = acquirer_link.request(rec, open_tags(rec), 1)
    fields.update(changes)
    return fields


def open_tags(rec):
    from host_sim.backend import card_data

    return card_data.card_data(None, rec, open_for_test)


def with_icc(fields, **tags):
    """`fields` with DE 55 tags replaced ({name: bytes}, e.g. t9F36=b"\\x00\\x06")."""
    icc = iso8583.icc_tags(fields["55"])
    icc.update({int(name[1:], 16): value for name, value in tags.items()})
    return dict(fields, **{"55": iso8583.icc_data(icc)})


@pytest.mark.parametrize("profile", ["visa", "unionpay-card"])
def test_a_cards_own_cryptogram_is_approved(profile):
    reply = ask(request_for(card_read(profile)))
    assert reply["39"] == iso8583.APPROVED and len(reply["38"]) == 6


@pytest.mark.parametrize("change", [
    {"t9F02": bytes.fromhex("000000000300"), "4": "000000000300"},   # a higher amount, in DE 4 and 9F02
    {"t9F36": b"\x00\x06"},                                            # another ATC
    {"t9F37": b"\x12\x34\x56\x79"},                                    # another unpredictable number
    {"t9A": bytes.fromhex("280101")},                                  # another date
])
def test_an_altered_transaction_fails_its_cryptogram(change):
    fields = request_for(card_read())
    fields = with_icc(fields, **{k: v for k, v in change.items() if k.startswith("t")})
    fields.update({k: v for k, v in change.items() if not k.startswith("t")})
    reply = ask(fields)
    assert (reply["39"], reply["44"]) == (iso8583.DO_NOT_HONOUR, "cryptogram failed")


def test_another_pan_of_the_same_issuer_fails_and_a_forged_cryptogram_fails():
    assert issuers.profile_for("4761739001010028") == "visa"
    reply = ask(request_for(card_read(), **{"2": "4761739001010028"}))
    assert (reply["39"], reply["44"]) == (iso8583.DO_NOT_HONOUR, "cryptogram failed")
    reply = ask(request_for(card_read(cryptogram=bytes(8))))
    assert (reply["39"], reply["44"]) == (iso8583.DO_NOT_HONOUR, "cryptogram failed")


def test_the_amount_charged_may_be_below_what_the_card_signed_never_above():
    signed = int(iso8583.icc_tags(request_for(card_read())["55"])[0x9F02].hex())
    assert signed > 100
    reply = ask(request_for(card_read(), **{"4": "%012d" % (signed - 100)}))  # a transfer discount
    assert reply["39"] == iso8583.APPROVED
    reply = ask(request_for(card_read(), **{"4": "%012d" % (signed + 1)}))  # DE 4 raised, 9F02 as signed
    assert (reply["39"], reply["44"]) == (iso8583.INVALID_AMOUNT, "amount above the card's")


def test_a_discounted_ride_sends_the_signed_amount_the_cryptogram_covers():
    import struct

    from protocol import record

    rec = contactless_record(1, card_read())
    signed = rec["amount"]
    ext = dict(rec["ext"])
    ext[record.EXT_CARD_AMOUNT] = struct.pack("<I", signed)
    rec = dict(rec, amount=signed - 100, ext=ext)
    fields = acquirer_link.request(rec, open_tags(rec), 1)
    assert int(fields["4"]) == signed - 100 and int(iso8583.icc_tags(fields["55"])[0x9F02].hex()) == signed
    assert ask(fields)["39"] == iso8583.APPROVED
    rec["ext"].pop(record.EXT_CARD_AMOUNT)  # without it the host would rebuild 9F02 from the charge
    assert ask(acquirer_link.request(rec, open_tags(rec), 1))["44"] == "cryptogram failed"


def test_card_problems_have_their_own_codes():
    assert ask(with_icc(request_for(card_read()), t9F27=b"\x00"))["39"] == iso8583.DO_NOT_HONOUR  # AAC
    assert ask(request_for(card_read(), **{"2": "4761739001010011"}))["39"] == iso8583.INVALID_CARD_NUMBER  # Luhn
    assert ask(request_for(card_read(), **{"2": "4000000000000002"}))["39"] == iso8583.NO_SUCH_ISSUER
    assert ask(request_for(card_read(), **{"14": "2001"}))["39"] == iso8583.EXPIRED_CARD
    fields = request_for(card_read())
    icc = iso8583.icc_tags(fields["55"])
    del icc[0x9F26]
    reply = ask(dict(fields, **{"55": iso8583.icc_data(icc)}))
    assert (reply["39"], reply["44"]) == (iso8583.DO_NOT_HONOUR, "no cryptogram")


def test_rules_apply_after_the_card_passed():
    fields = request_for(card_read())
    assert ask(fields, {"max_amount": 100})["39"] == iso8583.EXCEEDS_AMOUNT_LIMIT
    assert ask(fields, {"decline_atcs": [5]})["39"] == iso8583.RESTRICTED_CARD
    no_card = {k: v for k, v in fields.items() if k not in ("2", "14", "23", "35", "55")}
    assert ask(no_card)["39"] == iso8583.APPROVED  # no card data: the rules alone decide ...
    assert ask(no_card, {"require_cryptogram": True})["39"] == iso8583.DO_NOT_HONOUR  # ... unless required


def test_a_forged_tap_is_declined_after_upload_and_its_card_joins_the_deny_list(tmp_path):
    store = registered(tmp_path)
    good = contactless_record(1, card_read())
    forged = contactless_record(2, card_read("unionpay-card", cryptogram=bytes(8)))
    store.store([good, forged])
    assert acquirer.authorise_pending(store, acquirer.Acquirer(), opener=open_for_test) == (1, 1, 1)
    assert store.query("SELECT seq, approved, reason FROM authorisations ORDER BY seq") == \
        [(1, 1, None), (2, 0, "cryptogram failed")]
    assert store.deny_list_since(0) == [(forged["token"], 1)]
