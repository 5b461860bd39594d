"""firmware/emv.py on both runtimes: the contactless read against scripted card answers.

The scripts are transcripts of host_sim's emulated EMV applications (test profiles, test PANs): the
read is run once on CPython against the card model to record which response answers which command
APDU, then the recorded answers are replayed to the read on each runtime.  A read that sends a wrong
APDU gets 6D00 from the replay and fails.  Faulty cards and byte-level damage to the answers must end
in EmvError with a reason, never in another exception.
"""

import asyncio
import datetime

from hypothesis import strategies as st
from runtimes import draw_examples

from firmware import emv
from host_sim.emulators import emv_card

UN = b"\x12\x34\x56\x78"
EPOCH = 1795000000  # 2026-11-18
AMOUNT = 200

# --- bodies --------------------------------------------------------------------------------------


def body_read(transcript, amount, un, epoch, priority):
    import asyncio

    from firmware import emv

    sent = []

    async def exchange(apdu):
        sent.append(bytes(apdu))
        return transcript.get(bytes(apdu), b"\x6d\x00")

    term = emv.terminal_data(amount, un, epoch)
    try:
        card = asyncio.run(emv.read(exchange, term, tuple(priority) if priority else emv.AID_PRIORITY))
    except emv.EmvError as e:
        return "EmvError: %s" % e, sent
    return card, sent


def body_dates(epochs):
    from firmware import emv

    return [emv.bcd_date(e) for e in epochs]


def body_fill(dol, values):
    from firmware import emv

    try:
        return emv.fill_dol(dol, values)
    except emv.EmvError as e:
        return "EmvError: %s" % e


def body_sealable(card):
    from firmware import emv

    return emv.sensitive(card), emv.clear_data(card)


# --- helpers -------------------------------------------------------------------------------------


def transcript(card, priority=None):
    """Run the read on CPython against the card model and record its answers by command APDU."""
    answers = {}

    async def exchange(apdu):
        answers[bytes(apdu)] = card.respond(apdu)
        return answers[bytes(apdu)]

    term = emv.terminal_data(AMOUNT, UN, EPOCH)
    try:
        asyncio.run(emv.read(exchange, term, priority or emv.AID_PRIORITY))
    except emv.EmvError:
        pass
    return answers


# --- tests ---------------------------------------------------------------------------------------


def test_reads_every_profile(runtime):
    for name, profile in emv_card.PROFILES.items():
        card, sent = runtime.run(body_read, transcript(emv_card.Card(name)), AMOUNT, UN, EPOCH, None)
        assert isinstance(card, dict), (name, card)
        assert card["pan"] == profile["pan"]
        assert card["expiry"] == profile["expiry"]
        assert card["aid"] in profile["aids"]
        assert card["cid"] == b"\x80"  # ARQC: authorisation deferred to the host
        assert card["atc"] == b"\x00\x02" and len(card["ac"]) == 8
        assert card["un"] == UN and card["aip"] in (b"\x00\x80", b"\x19\x80")
        assert card["track2"] == emv_card.Card(name).track2()
        assert sent[0] == bytes.fromhex("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
        assert sent[2][:4] == bytes.fromhex("80A80000")
        assert sent[3:5] == [bytes.fromhex("00B2010C00"), bytes.fromhex("00B2011400")]
        assert len(sent) == (6 if profile["gpo"] == 1 else 5)  # M/Chip adds GENERATE AC


def test_priority_picks_unionpay_debit_first_and_is_configurable(runtime):
    card = emv_card.Card("unionpay-hce")  # lists credit before debit
    got, _ = runtime.run(body_read, transcript(card), AMOUNT, UN, EPOCH, None)
    assert got["aid"] == emv_card.UNIONPAY_DEBIT
    prio = [emv_card.UNIONPAY_CREDIT]
    got, _ = runtime.run(body_read, transcript(emv_card.Card("unionpay-hce"), prio), AMOUNT, UN, EPOCH, prio)
    assert got["aid"] == emv_card.UNIONPAY_CREDIT
    prio = [emv_card.VISA]
    got, _ = runtime.run(body_read, transcript(emv_card.Card("unionpay-hce"), prio), AMOUNT, UN, EPOCH, prio)
    assert got == "EmvError: no supported application on the card"


def test_gpo_carries_the_pdol_filled_from_terminal_data(runtime):
    _, sent = runtime.run(body_read, transcript(emv_card.Card("unionpay-hce")), AMOUNT, UN, EPOCH, None)
    gpo = sent[2]
    data = gpo[7:-1]
    assert gpo[5:7] == bytes([0x83, len(data)])
    want = (emv.DEFAULT_TTQ + bytes.fromhex("000000000200") + bytes(6) + b"\x01\x56" + bytes(5) + b"\x01\x56"
            + bytes.fromhex("261118") + b"\x00" + UN)
    assert data == want


def test_faulty_cards_are_rejected_with_reasons(runtime):
    cases = [("unionpay-hce", "sw", "EmvError: READ RECORD: status 6A83"),
             ("unionpay-hce", "gpo_sw", "EmvError: GPO: status 6985"),
             ("visa", "no_app", "EmvError: no supported application on the card")]
    for profile, fault, want in cases:
        got, _ = runtime.run(body_read, transcript(emv_card.Card(profile, [fault])), AMOUNT, UN, EPOCH, None)
        assert got == want
    got, _ = runtime.run(body_read, transcript(emv_card.Card("unionpay-card", ["truncated"])), AMOUNT, UN, EPOCH,
                         None)
    assert got.startswith("EmvError: record: bad TLV")


def test_damaged_answers_never_raise_anything_but_emv_error(runtime):
    base = {name: transcript(emv_card.Card(name)) for name in emv_card.PROFILES}
    examples = draw_examples(st.tuples(st.sampled_from(sorted(base)), st.integers(0, 10), st.integers(0, 10**6),
                                       st.sampled_from(["cut", "flip", "drop_sw", "extend"])))
    cases = []
    for name, which, pos, how in examples:
        t = dict(base[name])
        key = sorted(t)[which % len(t)]
        r = bytearray(t[key])
        if how == "cut":
            r = r[: pos % len(r)]
        elif how == "flip":
            r[pos % len(r)] ^= 1 << (pos % 8)
        elif how == "drop_sw":
            r = r[:-2]
        else:
            r[-2:-2] = bytes([pos & 0xFF, 0x81])
        t[key] = bytes(r)
        cases.append((t, AMOUNT, UN, EPOCH, None))
    for got, _ in runtime.run_many(body_read, cases):
        assert isinstance(got, dict) or got.startswith("EmvError: "), got


def test_bcd_date_matches_the_calendar(runtime):
    epochs = [0, 951782400, 1795000000, 4102444799] + [x * 86399 for x in range(0, 50000, 977)]
    got = runtime.run(body_dates, epochs)
    for e, d in zip(epochs, got):
        assert d == bytes.fromhex(datetime.datetime.fromtimestamp(e, datetime.UTC).strftime("%y%m%d")), e


def test_fill_dol_alignment_and_limits(runtime):
    values = {0x9F02: bytes.fromhex("000000000200"), 0x9F4E: b"BUS", 0x9F37: UN}
    assert runtime.run(body_fill, bytes.fromhex("9F02049F4E059F1C029F3704"), values) == (
        bytes.fromhex("00000200") + b"BUS\x00\x00" + bytes(2) + UN)
    assert runtime.run(body_fill, bytes.fromhex("9F02089F4E02"), values) == bytes(2) + values[0x9F02] + b"BU"
    assert runtime.run(body_fill, bytes.fromhex("9F1C81FF9F1C04"), values) == "EmvError: DOL asks for 255 bytes"
    assert runtime.run(body_fill, bytes.fromhex("9F"), values).startswith("EmvError: bad DOL")


def test_sensitive_and_clear_parts(runtime):
    card = runtime.run(body_read, transcript(emv_card.Card("unionpay-card")), AMOUNT, UN, EPOCH, None)[0]
    secret, clear = runtime.run(body_sealable, card)
    assert bytes.fromhex("6228480000000000013F") in secret and card["ac"] in secret
    assert card["track2"] in secret
    for value in (card["ac"], card["track2"], bytes.fromhex("622848")):
        assert value not in clear
    assert card["atc"] in clear and UN in clear
