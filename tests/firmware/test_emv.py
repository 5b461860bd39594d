"""firmware/emv.py on both runtimes: the contactless read against scripted card answers.

The scripts are transcripts of host_sim's emulated EMV applications (test profiles, test PANs): the
read is run once on CPython against the card model to record which response answers which command
APDU, then the recorded answers are replayed to the read on each runtime.  A read that sends a wrong
APDU gets 6D00 (6A82 for a SELECT) from the replay and fails.  Faulty cards and byte-level damage to
the answers must end in EmvError with a code and a reason, never in another exception.
"""

import asyncio
import datetime

from hypothesis import strategies as st
from runtimes import draw_examples

from firmware import emv
from host_sim import issuers
from host_sim.emulators import emv_card

UN = b"\x12\x34\x56\x78"
EPOCH = 1795000000  # 2026-11-18
AMOUNT = 250

# --- bodies --------------------------------------------------------------------------------------


def body_read(transcript, amount, un, epoch, priority):
    import asyncio

    from firmware import emv

    sent = []

    async def exchange(apdu):  # the answers to one APDU in the order the card gave them, the last repeated
        sent.append(bytes(apdu))
        answers = transcript.get(bytes(apdu))
        if not answers:
            return b"\x6a\x82" if apdu[1:2] == b"\xa4" else b"\x6d\x00"
        return answers.pop(0) if len(answers) > 1 else answers[0]

    term = emv.terminal_data(amount, un, epoch)
    try:
        card = asyncio.run(emv.read(exchange, term, tuple(priority) if priority else emv.AID_PRIORITY))
    except emv.EmvError as e:
        return "EmvError %d: %s" % (e.code, e), sent
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
    from firmware import emv_data

    return emv_data.sensitive(card), emv_data.clear_data(card)


def body_candidates(entries, priority):
    from firmware import emv

    try:
        return emv.candidates([tuple(e) for e in entries], tuple(priority))
    except emv.EmvError as e:
        return "EmvError %d: %s" % (e.code, e)


def body_cryptogram_types(cases):
    from firmware import emv

    out = []
    for aid, found in cases:
        try:
            out.append(emv.cryptogram_type(aid, found))
        except emv.EmvError as e:
            out.append("EmvError %d: %s" % (e.code, e))
    return out


def body_check_dates(cases):
    from firmware import emv

    out = []
    for found, today in cases:
        try:
            emv.check_dates(found, today)
            out.append("ok")
        except emv.EmvError as e:
            out.append("EmvError %d: %s" % (e.code, e))
    return out


# --- helpers -------------------------------------------------------------------------------------


def transcript(card, priority=None, amount=AMOUNT):
    """Run the read on CPython against the card model (a Card or a respond function) and record its
    answers by command APDU, in order (a directory-only card answers one READ RECORD twice)."""
    respond = card.respond if hasattr(card, "respond") else card
    answers = {}

    async def exchange(apdu):
        answers.setdefault(bytes(apdu), []).append(respond(apdu))
        return answers[bytes(apdu)][-1]

    term = emv.terminal_data(amount, UN, EPOCH)
    try:
        asyncio.run(emv.read(exchange, term, priority or emv.AID_PRIORITY))
    except emv.EmvError:
        pass
    return answers


def read(runtime, card, priority=None):
    return runtime.run(body_read, transcript(card, priority), AMOUNT, UN, EPOCH, priority)


def signed_tags(card, sent):
    """The tags the card's cryptogram covers: the PDOL data the read sent, AIP, ATC, IAD."""
    gpo = [a for a in sent if a[:2] == b"\x80\xa8"][-1]
    tags = emv_card.dol_values(emv_card.PDOL_UNIONPAY, gpo[7:-1]) or {}
    tags.update({0x82: card["aip"], 0x9F36: card["atc"], 0x9F10: card["iad"], 0x9F26: card["ac"]})
    return tags


# --- tests ---------------------------------------------------------------------------------------


def test_reads_every_profile_by_the_cards_priority(runtime):
    chosen = {"unionpay-hce": emv_card.UNIONPAY_CREDIT, "unionpay-card": emv_card.UNIONPAY_DEBIT,
              "unionpay-pse": emv_card.UNIONPAY_CREDIT, "visa": emv_card.VISA, "cb-visa": emv_card.VISA,
              "mastercard": emv_card.MASTERCARD}
    assert sorted(chosen) == sorted(emv_card.PROFILES)
    for name, profile in emv_card.PROFILES.items():
        card, sent = read(runtime, emv_card.Card(name))
        assert isinstance(card, dict), (name, card)
        assert card["pan"] == profile["pan"] and card["expiry"] == profile["expiry"]
        assert card["aid"] == chosen[name], name
        assert card["cid"] == b"\x80"  # ARQC: authorisation deferred to the host
        assert card["atc"] == b"\x00\x02" and len(card["ac"]) == 8 and card["amount"] == AMOUNT
        assert card["un"] == UN and card["aip"] in (b"\x00\x80", b"\x19\x80")
        assert card["track2"] == emv_card.Card(name).track2()
        if profile["gpo"] == 2:  # the cryptogram verifies at the test issuer over what the read sent
            assert issuers.verify_cryptogram(name, card["pan"], card["psn"].hex(), signed_tags(card, sent)), name


def test_apdus_of_a_read(runtime):
    _, sent = read(runtime, emv_card.Card("unionpay-card"))
    assert sent[0] == bytes.fromhex("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
    assert sent[1] == bytes.fromhex("00A4040008") + emv_card.UNIONPAY_DEBIT + b"\x00"
    assert sent[2][:4] == bytes.fromhex("80A80000")
    assert sent[3:] == [bytes.fromhex("00B2010C00"), bytes.fromhex("00B2011400")]
    _, sent = read(runtime, emv_card.Card("mastercard"))
    assert len(sent) == 6 and sent[-1][:4] == bytes.fromhex("80AE8000")  # GENERATE AC asks for an ARQC


def test_directory_only_card_is_read_from_its_pse_records(runtime):
    card, sent = read(runtime, emv_card.Card("unionpay-pse"))
    assert card["aid"] == emv_card.UNIONPAY_CREDIT
    assert sent[:5] == [emv.select(emv.PPSE), emv.select(emv.PSE), bytes.fromhex("00B2010C00"),
                        bytes.fromhex("00B2020C00"), bytes.fromhex("00B2030C00")]  # 6A83 ends the directory


def test_candidates_card_priority_first_terminal_breaks_ties(runtime):
    visa, debit, credit = emv_card.VISA, emv_card.UNIONPAY_DEBIT, emv_card.UNIONPAY_CREDIT
    prefs = list(emv.AID_PRIORITY)
    assert runtime.run(body_candidates, [(credit, 1), (debit, 2)], prefs) == [credit, debit]
    assert runtime.run(body_candidates, [(debit, 2), (credit, 1)], prefs) == [credit, debit]
    assert runtime.run(body_candidates, [(visa, 1), (credit, 1), (debit, 1)], prefs) == [debit, credit, visa]
    assert runtime.run(body_candidates, [(visa, 16), (credit, 3)], prefs) == [credit, visa]  # no 87: last
    assert runtime.run(body_candidates, [(emv_card.CB, 1), (visa, 2)], prefs) == [visa]  # CB unsupported
    assert runtime.run(body_candidates, [(visa + b"\x01", 1)], prefs) == [visa + b"\x01"]  # partial match
    assert runtime.run(body_candidates, [(emv_card.CB, 1)], prefs) == (
        "EmvError %d: no supported application on the card" % emv.UNSUPPORTED)


def test_select_answer_is_checked_and_6a82_moves_to_the_next_candidate(runtime):
    card = emv_card.Card("unionpay-hce")

    def credit_missing(apdu):
        return b"\x6a\x82" if bytes(apdu) == emv.select(emv_card.UNIONPAY_CREDIT) else card.respond(apdu)

    got, sent = read(runtime, credit_missing)
    assert got["aid"] == emv_card.UNIONPAY_DEBIT
    assert sent[1:3] == [emv.select(emv_card.UNIONPAY_CREDIT), emv.select(emv_card.UNIONPAY_DEBIT)]
    got, sent = read(runtime, emv_card.Card("visa", ["wrong_fci"]))  # the PPSE's FCI is not the AID's
    assert got == "EmvError %d: no application could be selected" % emv.READ
    assert not any(a[:2] == b"\x80\xa8" for a in sent)


def test_list_of_aids_when_the_card_has_no_directory(runtime):
    card = emv_card.Card("visa")

    def no_ppse(apdu):  # answers 6700 to the PPSE, its full AID to a partial (RID) SELECT
        apdu = bytes(apdu)
        if apdu in (emv.select(emv.PPSE), emv.select(emv.PSE)):
            return b"\x67\x00"
        if apdu == emv.select(emv_card.VISA[:5]):
            return card.respond(emv.select(emv_card.VISA))
        return card.respond(apdu)

    got, sent = read(runtime, no_ppse, [emv_card.MASTERCARD, emv_card.VISA[:5]])
    assert got["aid"] == emv_card.VISA and got["cid"] == b"\x80"
    assert sent[2:4] == [emv.select(emv_card.MASTERCARD), emv.select(emv_card.VISA[:5])]


def test_gpo_carries_the_pdol_filled_from_terminal_data(runtime):
    _, sent = read(runtime, emv_card.Card("unionpay-hce"))
    gpo = sent[2]
    data = gpo[7:-1]
    assert gpo[5:7] == bytes([0x83, len(data)])
    want = (bytes.fromhex("20804000") + bytes.fromhex("000000000250") + bytes(6) + b"\x01\x56" + bytes(5)
            + b"\x01\x56" + bytes.fromhex("261118") + b"\x00" + UN)
    assert data == want
    assert emv.terminal_data(1, UN, EPOCH)[0x9F33] == bytes.fromhex("000800")


def test_cryptogram_type_from_9f27_or_the_iad(runtime):
    visa, up, mc = emv_card.VISA, emv_card.UNIONPAY_DEBIT, emv_card.MASTERCARD
    iphone = bytes.fromhex("1f4a6360a0000000001003027300000000400000000000000000000000000000")  # format 2/4
    cases = [
        (visa, {0x9F27: b"\x80", 0x9F10: bytes.fromhex("06010A03902000")}),  # 9F27 wins
        (visa, {0x9F10: bytes.fromhex("06010A03A02000")}),  # format 0/1/3, CVN 10: ARQC
        (visa, {0x9F10: bytes.fromhex("06011203902000")}),  # TC
        (visa, {0x9F10: bytes.fromhex("06011203802000")}),  # AAC
        (visa, {0x9F10: iphone}),  # format 2/4: ARQC
        (up, {0x9F10: bytes.fromhex("0700010360AC0201")}),  # UnionPay, CVR byte 2 60: ARQC first, TC second
        (up, {0x9F10: bytes.fromhex("0700010390AC0201")}),  # 90: TC in GPO
        (up, {0x9F10: bytes.fromhex("07000103B0AC0201")}),  # RFU
        (mc, {0x9F10: bytes.fromhex("0110A00003220000000000000000000000FF")}),  # M/Chip: no rule here
        (visa, {0x9F10: bytes.fromhex("0601")}),
        (visa, {0x9F27: b"\x80\x00"}),
    ]
    assert runtime.run(body_cryptogram_types, cases) == [
        0x80, 0x80, 0x40, 0x00, 0x80, 0x80, 0x40, "EmvError 0: cryptogram type RFU", "EmvError 0: card gave no CID",
        "EmvError 0: card gave no CID", "EmvError 0: CID of 2 bytes"]


def test_iad_cryptogram_type_property(runtime):
    """Every CVR byte 2 gives the type of its bits 6-5, whatever the other bits, in every IAD format."""
    examples = draw_examples(st.tuples(st.integers(0, 255), st.sampled_from(["06", "07", "1F"]),
                                       st.binary(min_size=2, max_size=2)))
    cases, want = [], []
    for cvr2, fmt, dki_cvn in examples:
        iad = bytes.fromhex(fmt) + dki_cvn + (b"\x03" if fmt != "1F" else b"\x00") + bytes([cvr2]) + bytes(2)
        if fmt == "1F":
            iad += bytes(32 - len(iad))
        cases.append((emv_card.VISA, {0x9F10: iad}))
        kind = (0x00, 0x40, 0x80, None)[(cvr2 >> 4) & 3]
        want.append(kind if kind is not None else "EmvError 0: cryptogram type RFU")
    got = runtime.run_many(body_cryptogram_types, [([case],) for case in cases])
    assert [g[0] for g in got] == want


def test_expiry_and_effective_dates(runtime):
    t2 = bytes.fromhex("4761739001010010D2611201")
    cases = [
        ({0x5F24: bytes.fromhex("261118")}, bytes.fromhex("261118")),  # expires today: still valid
        ({0x5F24: bytes.fromhex("261117")}, bytes.fromhex("261118")),
        ({0x57: t2}, bytes.fromhex("261130")),  # track 2 YYMM: valid through the month
        ({0x57: t2}, bytes.fromhex("261201")),
        ({0x5F24: bytes.fromhex("991231")}, bytes.fromhex("261118")),  # 1999
        ({0x5F24: bytes.fromhex("491231")}, bytes.fromhex("261118")),  # 2049
        ({0x5F24: bytes.fromhex("301231"), 0x5F25: bytes.fromhex("261119")}, bytes.fromhex("261118")),
        ({0x5F24: bytes.fromhex("30123F")}, bytes.fromhex("261118")),
        ({}, bytes.fromhex("261118")),
    ]
    exp, eff = "EmvError %d: card expired" % emv.EXPIRED, "EmvError %d: card not yet effective" % emv.NOT_EFFECTIVE
    assert runtime.run(body_check_dates, cases) == [
        "ok", exp, "ok", exp, exp, "ok", eff, "EmvError 0: card date malformed", "EmvError 0: card gave no expiry date"]


def test_what_cards_answer_decides_the_code(runtime):
    cases = [
        ("visa", ["aac"], b"\x00"), ("visa", ["tc"], b"\x40"), ("unionpay-card", ["no_cid"], b"\x80"),
        ("unionpay-hce", ["aac"], b"\x00"), ("cb-visa", ["tc"], b"\x40"), ("mastercard", ["aac"], b"\x00"),
        ("unionpay-card", ["expired"], emv.EXPIRED), ("mastercard", ["expired"], emv.EXPIRED),
        ("visa", ["cvm"], emv.CVM), ("unionpay-hce", ["gpo_sw"], emv.REFUSED), ("visa", ["no_app"], emv.UNSUPPORTED),
        ("unionpay-hce", ["sw"], emv.READ), ("unionpay-card", ["truncated"], emv.READ),
    ]
    for profile, faults, want in cases:
        got, sent = read(runtime, emv_card.Card(profile, faults))
        if isinstance(want, bytes):
            assert got["cid"] == want, (profile, faults, got)
        else:
            assert got.startswith("EmvError %d: " % want), (profile, faults, got)
        if faults == ["expired"]:
            assert not any(a[:2] == b"\x80\xae" for a in sent)  # no GENERATE AC for an expired card


def test_wrong_le_is_sent_again(runtime):
    card = emv_card.Card("visa")

    def wants_le(apdu):  # READ RECORD with Le 00 answered 6C + the record's length
        apdu = bytes(apdu)
        if apdu[1] == 0xB2 and apdu[-1] == 0:
            return b"\x6c" + bytes([len(card.respond(apdu)) - 2])
        return card.respond(apdu[:-1] + b"\x00") if apdu[1] == 0xB2 else card.respond(apdu)

    got, sent = read(runtime, wants_le)
    assert isinstance(got, dict), got
    assert sent[3][-1] == 0 and sent[4][:4] == sent[3][:4] and sent[4][-1] != 0


def test_damaged_answers_never_raise_anything_but_emv_error(runtime):
    base = {name: transcript(emv_card.Card(name)) for name in emv_card.PROFILES}
    examples = draw_examples(st.tuples(st.sampled_from(sorted(base)), st.integers(0, 10), st.integers(0, 10**6),
                                       st.sampled_from(["cut", "flip", "drop_sw", "extend"])))
    cases = []
    for name, which, pos, how in examples:
        t = {k: list(v) for k, v in base[name].items()}
        key = sorted(t)[which % len(t)]
        r = bytearray(t[key][0])
        if how == "cut":
            r = r[: pos % len(r)]
        elif how == "flip":
            r[pos % len(r)] ^= 1 << (pos % 8)
        elif how == "drop_sw":
            r = r[:-2]
        else:
            r[-2:-2] = bytes([pos & 0xFF, 0x81])
        t[key][0] = bytes(r)
        cases.append((t, AMOUNT, UN, EPOCH, None))
    for got, _ in runtime.run_many(body_read, cases):
        assert isinstance(got, dict) or got.startswith("EmvError "), got


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
    card = read(runtime, emv_card.Card("unionpay-card"))[0]
    secret, clear = runtime.run(body_sealable, card)
    assert bytes.fromhex("6228480000000000018F") in secret and card["ac"] in secret
    assert card["track2"] in secret
    for value in (card["ac"], card["track2"], bytes.fromhex("622848")):
        assert value not in clear
    assert card["atc"] in clear and UN in clear


def body_card_errors(codes):
    from firmware import decision

    d = decision.Decider(None)
    return [(d.decide_card_error(code).outcome == decision.DECLINE, d.decide_card_error(code).reason)
            for code in codes]


def test_the_decision_maps_every_card_read_error_code_to_its_reason(runtime):
    from protocol import record

    codes = [emv.READ, emv.UNSUPPORTED, emv.EXPIRED, emv.NOT_EFFECTIVE, emv.CVM, emv.REFUSED, -1, emv.CARD_REMOVED,
             emv.READER_FAILED]
    got = runtime.run(body_card_errors, codes)
    assert got == [(True, r) for r in (record.REASON_CARD_READ, record.REASON_CARD_UNSUPPORTED,
                                       record.REASON_CARD_EXPIRED, record.REASON_CARD_NOT_EFFECTIVE,
                                       record.REASON_CARD_CVM, record.REASON_CARD_REFUSED,
                                       record.REASON_CARD_READ,  # a code the table does not know
                                       record.REASON_CARD_REMOVED, record.REASON_CARD_READ)]
    assert all(reason in record.REASON_TEXT for _, reason in got)


def test_any_card_dates_decline_with_a_code_never_raise(runtime):
    blob = st.binary(max_size=8)
    examples = draw_examples(st.tuples(st.dictionaries(st.sampled_from([0x5F24, 0x5F25, 0x57]), blob),
                                       st.binary(min_size=3, max_size=3)), count=60)
    got = runtime.run_many(body_check_dates, [([list(e)],) for e in examples])
    for (result,), (found, _) in zip(got, examples):
        assert result == "ok" or result.startswith("EmvError "), (found, result)
