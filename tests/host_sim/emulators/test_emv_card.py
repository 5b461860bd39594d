"""The emulated cards behave like real ones, not like the terminal hopes: priorities in the PPSE, 6A82
for an AID they do not have, 6700 for a GPO of the wrong length, qVSDC answers without 9F27, AAC and
TC answers, expired cards, a directory-only card, and cryptograms the test issuers verify."""

from firmware import emv, emv_select
from host_sim import issuers
from host_sim.emulators import emv_card
from protocol import tlv

UN = b"\x01\x02\x03\x04"


def gpo_for(card, aid, amount=200):
    fci = tlv.decode(card.respond(emv.select(aid))[:-2])
    pdol = tlv.find(fci, 0x9F38) or b""
    return emv.gpo(emv.fill_dol(pdol, emv.terminal_data(amount, UN, 1795000000)))


def entries(answer):
    found = []
    emv_select._entries(tlv.decode(answer[:-2]), found)
    return found


def test_ppse_priorities_and_unknown_aid():
    card = emv_card.Card("cb-visa")
    assert entries(card.respond(emv.select(emv.PPSE))) == [(emv_card.CB, 1), (emv_card.VISA, 2)]
    assert card.respond(emv.select(emv_card.MASTERCARD)) == b"\x6a\x82"
    assert card.respond(emv.select(emv_card.CB))[-2:] == b"\x90\x00"


def test_gpo_of_the_wrong_length_is_6700():
    card = emv_card.Card("visa")
    good = gpo_for(card, emv_card.VISA)
    assert card.respond(good)[-2:] == b"\x90\x00"
    short = good[:5] + bytes([good[4] - 1, 0x83, good[6] - 1]) + good[7:-2] + b"\x00"
    assert card.respond(short) == b"\x67\x00"
    assert card.respond(good[:4] + bytes([good[4]]) + good[5:-1]) == b"\x67\x00"  # no Le
    assert card.respond(emv.gpo(b"")) == b"\x67\x00"  # empty 83 although the card has a PDOL


def test_qvsdc_without_9f27_types_its_cryptogram_in_the_iad():
    for faults, kind in (((), 0x80), (("aac",), 0x00), (("tc",), 0x40)):
        card = emv_card.Card("visa", faults)
        answer = tlv.decode(card.respond(gpo_for(card, emv_card.VISA))[:-2])
        assert tlv.find(answer, 0x9F27) is None
        iad = tlv.find(answer, 0x9F10)
        assert (iad[4] >> 4) & 3 == {0x00: 0, 0x40: 1, 0x80: 2}[kind]
        card = emv_card.Card("unionpay-card", faults)
        assert tlv.find(tlv.decode(card.respond(gpo_for(card, emv_card.UNIONPAY_DEBIT))[:-2]), 0x9F27) == bytes([kind])


def test_generate_ac_gives_a_tc_only_when_asked():
    card = emv_card.Card("mastercard", ["tc"])
    cdol = bytes(29)
    for p1, kind in ((0x80, 0x80), (0x40, 0x40)):
        answer = card.respond(b"\x80\xae" + bytes([p1, 0, len(cdol)]) + cdol + b"\x00")
        assert tlv.find(tlv.decode(answer[:-2]), 0x9F27) == bytes([kind])
    assert card.respond(b"\x80\xae\x80\x00\x05" + bytes(5) + b"\x00") == b"\x67\x00"


def test_expired_card_and_directory_only_card():
    card = emv_card.Card("unionpay-card", ["expired"])
    assert card.expiry == "2401" and "D2401" in card.track2().hex().upper()
    pse = emv_card.Card("unionpay-pse")
    assert pse.respond(emv.select(emv.PPSE)) == b"\x6a\x82"
    fci = tlv.decode(pse.respond(emv.select(emv.PSE))[:-2])
    assert tlv.find(fci, 0x88) == b"\x01" and tlv.find(fci, 0xBF0C) is None
    assert entries(pse.respond(emv.read_record(1, 1))) == [(emv_card.UNIONPAY_CREDIT, 1)]
    assert entries(pse.respond(emv.read_record(1, 2))) == [(emv_card.UNIONPAY_DEBIT, 2)]
    assert pse.respond(emv.read_record(1, 3)) == b"\x6a\x83"


def test_cryptograms_verify_at_the_test_issuer_and_an_altered_amount_does_not():
    card = emv_card.Card("unionpay-hce")
    command = gpo_for(card, emv_card.UNIONPAY_CREDIT, amount=350)
    answer = tlv.decode(card.respond(command)[:-2])
    tags = emv_card.dol_values(emv_card.PDOL_UNIONPAY, command[7:-1])
    for tag in (0x82, 0x9F36, 0x9F10, 0x9F26):
        tags[tag] = tlv.find(answer, tag)
    pan = emv_card.PROFILES["unionpay-hce"]["pan"]
    assert issuers.profile_for(pan) == "unionpay-hce"
    assert issuers.verify_cryptogram("unionpay-hce", pan, "01", tags)
    tags[0x9F02] = bytes.fromhex("000000000200")
    assert not issuers.verify_cryptogram("unionpay-hce", pan, "01", tags)
    for name, profile in emv_card.PROFILES.items():  # every profile's PAN belongs to its own test issuer
        assert issuers.profile_for(profile["pan"]) == name
