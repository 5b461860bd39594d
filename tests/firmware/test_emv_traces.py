"""Real cards and phones, replayed to firmware/emv.py on both runtimes.

The captures (../shared/vectors/realworld/cards/*.trace, read in place, skipped when absent) are the
APDUs a real card answered.  The replay answers the kernel's commands the way that card did:

    - the same command bytes: the recorded answers in order (a card answers READ RECORD 1 of SFI 1
      once as a directory record and once as application data);
    - otherwise the same command with other data or Le: SELECT of the same name, GET PROCESSING OPTIONS
      and GENERATE AC whatever their data, READ RECORD of the same record; a 6700 answer (wrong length
      of that capture's command) does not count;
    - a SELECT of the full AID a card answered to a partial SELECT: that answer (the card's DF name);
    - anything else: 6A82 to a SELECT, 6A83 to a READ RECORD (for the captures cards.json marks as
      missing records, and every capture under partial/: an empty record 70 00), 6D00 otherwise.

What the kernel must conclude follows from cards.json and the specifications, not from this kernel:
no application the terminal accepts (UnionPay, Visa, Mastercard): not supported; GPO refused with
6984/6985/6986: refused; expired as of the board date (2026-09-15): expired; then the cryptogram type
cards.json names (ARQC, TC, AAC) or, without one, a read error.
"""

import calendar
import json
import pathlib

import pytest

from firmware import emv

CANDIDATES = (pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "realworld",
              pathlib.Path("/work/shared/vectors/realworld"))
REALWORLD = next((p for p in CANDIDATES if (p / "cards" / "cards.json").exists()), None)
BOARD_DATE = calendar.timegm((2026, 9, 15, 10, 0, 0))
UN = b"\x0a\x0b\x0c\x0d"
AMOUNT = 200

pytestmark = pytest.mark.skipif(REALWORLD is None, reason="real-world vectors (../shared/vectors/realworld) absent")


def body_replay(pairs, incomplete, amount, un, epoch):
    import asyncio

    from firmware import emv

    used = [False] * len(pairs)

    def take(match):
        """The first unused recorded answer whose command matches, else the last used one."""
        last = None
        for i in range(len(pairs)):
            command, answer = pairs[i]
            if match(command, answer):
                if not used[i]:
                    used[i] = True
                    return answer
                last = answer
        return last

    def similar(apdu):
        def match(command, answer):
            if answer[-2:] == b"\x67\x00" or command[:2] != apdu[:2]:
                return False
            if apdu[1] == 0xA4:
                return command[5 : 5 + command[4]] == apdu[5 : 5 + apdu[4]]
            if apdu[1] == 0xB2:
                return command[2:4] == apdu[2:4]
            return apdu[1] in (0xA8, 0xAE)

        return match

    def named(name):
        def match(command, answer):
            if command[1] != 0xA4 or answer[-2:] != b"\x90\x00":
                return False
            i = answer.find(b"\x84")
            return i >= 0 and answer[i + 2 : i + 2 + answer[i + 1]] == name

        return match

    async def exchange(apdu):
        apdu = bytes(apdu)
        answer = take(lambda command, answer: command == apdu) or take(similar(apdu))
        if answer is None and apdu[1] == 0xA4:
            answer = take(named(apdu[5 : 5 + apdu[4]])) or b"\x6a\x82"
        if answer is None and apdu[1] == 0xB2:
            answer = b"\x70\x00\x90\x00" if incomplete else b"\x6a\x83"
        return answer or b"\x6d\x00"

    try:
        card = asyncio.run(emv.read(exchange, emv.terminal_data(amount, un, epoch)))
    except emv.EmvError as e:
        return ["error", e.code, str(e)]
    return ["card", card["aid"], card["cid"][0] & 0xC0, card["amount"]]


def load(name):
    pairs, command = [], None
    for line in (REALWORLD / "cards" / name).read_text().splitlines():
        if line.startswith("send:"):
            command = bytes.fromhex(line[5:].replace(" ", ""))
        elif line.startswith("resp:") and command is not None:
            pairs.append((command, bytes.fromhex(line[5:].replace(" ", ""))))
            command = None
    return pairs


def expected(info):
    """("error", code) or ("card", cryptogram type) that the specifications give for a capture."""
    aids = [bytes.fromhex(e["aid"]) for e in info["aids_in_ppse"]]
    if aids and not any(aid[: len(t)] == t for aid in aids for t in emv.AID_PRIORITY):
        return "error", emv.UNSUPPORTED
    if info["scheme"] == "Mastercard" and info["aip"] and not int(info["aip"].split()[1], 16) & 0x80:
        return "error", emv.UNSUPPORTED  # mag-stripe mode only (AIP byte 2 bit 8, Book C-2): no MSD here
    if any(a["cmd"].startswith("80 A8") and a["sw"] in ("6984", "6985", "6986") for a in info["non_9000_answers"]):
        return "error", emv.REFUSED
    if info["expiry_in_past_as_of_2026_09"]:
        return "error", emv.EXPIRED
    kind = {"ARQC": 0x80, "TC": 0x40, "AAC": 0x00}.get(info["cryptogram_type"])
    return ("error", emv.READ) if kind is None else ("card", kind)


def traces():
    if REALWORLD is None:
        return []
    return sorted(json.loads((REALWORLD / "cards" / "cards.json").read_text()).items())


@pytest.mark.parametrize("name,info", traces(), ids=[name for name, _ in traces()])
def test_real_card_is_read_as_the_specifications_say(runtime, name, info):
    incomplete = (bool(info.get("records_incomplete")) or "records incomplete" in info.get("quirks", [])
                  or name.startswith("partial/"))
    got = runtime.run(body_replay, load(name), incomplete, AMOUNT, UN, BOARD_DATE)
    assert (got[0], got[1] if got[0] == "error" else got[2]) == expected(info), (name, got)
    if got[0] == "card":
        assert got[3] == AMOUNT
        ranked = sorted((e["priority"] or 16, n, e["aid"]) for n, e in enumerate(info["aids_in_ppse"])
                        if any(bytes.fromhex(e["aid"])[: len(t)] == t for t in emv.AID_PRIORITY))
        if ranked:  # the card's own first choice among the applications the terminal accepts
            assert got[1].hex().upper() == ranked[0][2], (name, got)
