"""Decider.decide_emv on both runtimes: a contactless read becomes a flat-fare, deferred-authorisation
record whose only card data is the fleet token, a sealed blob and the clear cryptogram context.

Card reads come from firmware.emv against host_sim's emulated test cards (on CPython); the sealed part is
opened here with protocol.crypto.unseal to prove it holds the PAN, track 2 and cryptogram.
"""

import asyncio
import hashlib
import hmac

from firmware import emv
from host_sim.emulators import emv_card
from protocol import crypto, record, tlv

SALT = bytes(range(16))
KEY = bytes(range(32, 64))
NONCE = bytes(range(12))
TERMINAL = b"\x56\x42\x00\x00\x01\x00\x00\x00"


def body_decide(salt, key, nonce, cards, remember_first):
    from firmware import decision
    from protocol import crypto, record

    d = decision.Decider(salt, sealer=lambda plaintext, associated: crypto.seal(key, nonce, plaintext, associated))
    out = []
    for card in cards:
        r = d.decide_emv(card)
        data = None
        if r.outcome == decision.ACCEPT:
            data = record.encode(b"\x56\x42\x00\x00\x01\x00\x00\x00", 7, 1795000000, r.kind, r.amount, 156,
                                 record.ACCEPTED, 0, 1, r.token, r.extensions)
            if remember_first:
                d.remember(r.token, r.atc, 7)
        out.append((r.outcome, r.reason, r.kind, r.token, r.seq, data))
    return out


def read(profile, atc=1):
    card = emv_card.Card(profile, atc=atc)

    async def exchange(apdu):
        return card.respond(apdu)

    return asyncio.run(emv.read(exchange, emv.terminal_data(200, b"\x01\x02\x03\x04", 1795000000)))


def test_accepts_and_seals(runtime):
    for profile in emv_card.PROFILES:
        card = read(profile)
        (outcome, reason, kind, token, _, data), = runtime.run(body_decide, SALT, KEY, NONCE, [card], False)
        assert (outcome, reason, kind) == (1, 0, record.KIND_EMV_CONTACTLESS)
        assert token == hmac.new(SALT, card["pan"].encode(), hashlib.sha256).digest()[:16]  # key version 1
        assert rec_key_version(data) == 1
        rec = record.decode(data)
        assert rec["amount"] == 200 and rec["token"] == token
        assert rec["ext"][record.EXT_ATC] == card["atc"] and rec["ext"][record.EXT_AID] == card["aid"]
        secret = tlv.decode(crypto.unseal(KEY, rec["ext"][record.EXT_EMV_SEALED], token))
        assert tlv.find(secret, 0x5A).hex().upper().rstrip("F") == card["pan"]
        assert tlv.find(secret, 0x57) == card["track2"] and tlv.find(secret, 0x9F26) == card["ac"]
        clear = tlv.decode(rec["ext"][record.EXT_EMV_DATA])
        assert tlv.find(clear, 0x9F27) == b"\x80" and tlv.find(clear, 0x9F37) == b"\x01\x02\x03\x04"
        pan_bcd = bytes.fromhex(card["pan"][:16])
        assert card["pan"].encode() not in data and pan_bcd not in data and card["track2"] not in data


def rec_key_version(data):
    return int.from_bytes(record.decode(data)["ext"][record.EXT_TOKEN_KEY], "little")


def test_same_tap_twice_is_already_paid_a_new_atc_is_not(runtime):
    first, again, later = read("unionpay-hce"), read("unionpay-hce"), read("unionpay-hce", atc=5)
    got = runtime.run(body_decide, SALT, KEY, NONCE, [first, again, later], True)
    assert [g[0] for g in got] == [1, 3, 1]
    assert got[1][4] == 7


def test_card_declined_offline(runtime):
    card = _read_faulty("visa", ["aac"])  # no 9F27: the AAC is read from the IAD
    (outcome, reason, _, _, _, data), = runtime.run(body_decide, SALT, KEY, NONCE, [card], False)
    assert (outcome, reason, data) == (2, record.REASON_CARD_DECLINED, None)


def test_card_approved_offline_is_declined(runtime):
    card = _read_faulty("cb-visa", ["tc"])
    assert card["cid"] == b"\x40"
    (outcome, reason, _, token, _, data), = runtime.run(body_decide, SALT, KEY, NONCE, [card], False)
    assert (outcome, reason, data) == (2, record.REASON_CARD_OFFLINE, None)
    assert token == hmac.new(SALT, card["pan"].encode(), hashlib.sha256).digest()[:16]  # the refusal names the card


def body_fleet_amount(salt, key, nonce, fares, kind, card):
    from firmware import decision
    from protocol import crypto

    d = decision.Decider(salt, sealer=lambda plaintext, associated: crypto.seal(key, nonce, plaintext, associated))
    d.use(3, fares)  # protocol/fleet.py KIND_FARES
    if card is None:
        return d.amount_for(kind)
    r = d.decide_emv(card)
    return r.outcome, r.amount


def test_the_card_signs_the_amount_the_record_charges(runtime):
    fares = {record.KIND_EMV_CONTACTLESS: 350, record.KIND_QR_CPM: 180}
    amount = runtime.run(body_fleet_amount, SALT, KEY, NONCE, fares, record.KIND_EMV_CONTACTLESS, None)
    assert amount == 350
    card = emv_card.Card("visa")
    sent = []

    async def exchange(apdu):
        sent.append(bytes(apdu))
        return card.respond(apdu)

    got = asyncio.run(emv.read(exchange, emv.terminal_data(amount, b"\x01\x02\x03\x04", 1795000000)))
    signed = emv_card.dol_values(emv_card.PDOL_VISA, [a for a in sent if a[:2] == b"\x80\xa8"][0][7:-1])[0x9F02]
    assert signed == bytes.fromhex("000000000350") and got["amount"] == 350
    assert runtime.run(body_fleet_amount, SALT, KEY, NONCE, fares, 0, got) == (1, 350)


def _read_faulty(profile, faults):
    card = emv_card.Card(profile, faults)

    async def exchange(apdu):
        return card.respond(apdu)

    return asyncio.run(emv.read(exchange, emv.terminal_data(200, b"\x01\x02\x03\x04", 1795000000)))
