"""EMV application selection (Book B 3.3, Book 1 12.3): the directory, the candidates in the card's
order of priority, SELECT with its answer checked, GET PROCESSING OPTIONS.

PPSE first: its directory entries (BF0C/61), or, for a directory-only card whose FCI names a directory
file (88), that file's records.  A card that does not select the PPSE is asked for the contact PSE the
same way; a card with neither gets the list-of-AIDs method (each terminal AID, partial selection).
Candidates are the entries whose AID starts with an AID the terminal supports, ordered by the card's
priority (87, low nibble; none = last), the terminal's preference only breaking ties.  A SELECT counts
only with status 90 00 and an FCI whose DF name (84) is the AID selected; 6A82 or a wrong FCI moves on
to the next candidate, and so does a GPO refused with 6984/6985/6986.
"""

from firmware.emv_apdu import (
    REFUSED,
    UNSUPPORTED,
    EmvError,
    check,
    fill_dol,
    gpo,
    parse,
    read_record,
    select,
    send,
    status,
)
from protocol import tlv

PPSE = b"2PAY.SYS.DDF01"
PSE = b"1PAY.SYS.DDF01"
UNIONPAY_DEBIT = b"\xa0\x00\x00\x03\x33\x01\x01\x01"
UNIONPAY_CREDIT = b"\xa0\x00\x00\x03\x33\x01\x01\x02"
UNIONPAY_QUASI_CREDIT = b"\xa0\x00\x00\x03\x33\x01\x01\x03"
VISA = b"\xa0\x00\x00\x00\x03\x10\x10"
MASTERCARD = b"\xa0\x00\x00\x00\x04\x10\x10"
# The AIDs this terminal accepts, in its order of preference (which only breaks the card's ties).
AID_PRIORITY = (UNIONPAY_DEBIT, UNIONPAY_CREDIT, UNIONPAY_QUASI_CREDIT, VISA, MASTERCARD)
RID_VISA = b"\xa0\x00\x00\x00\x03"
RID_UNIONPAY = b"\xa0\x00\x00\x03\x33"
RID_MASTERCARD = b"\xa0\x00\x00\x00\x04"

MAX_ENTRIES = 8
MAX_DIRECTORY_RECORDS = 16
T_AID = 0x4F
T_DF_NAME = 0x84
T_PRIORITY = 0x87
T_SFI = 0x88
T_PDOL = 0x9F38


def _entries(objects, out):
    """(AID, priority) of the directory entries (61) under `objects`, at most MAX_ENTRIES."""
    for tag, _, children in objects:
        if tag == 0x61 and children:
            aid = tlv.find(children, T_AID)
            prio = tlv.find(children, T_PRIORITY)
            if aid is not None and 5 <= len(aid) <= 16 and len(out) < MAX_ENTRIES:
                out.append((aid, prio[0] & 0x0F if prio and prio[0] & 0x0F else 16))
        elif children:
            _entries(children, out)


def candidates(entries, priority=AID_PRIORITY):
    """The entries the terminal supports (their AID starts with one of `priority`), in selection
    order: the card's priority first, the terminal's preference for equal priorities, then the
    directory's order; EmvError(UNSUPPORTED) when there is none."""
    ranked = []
    for n, (aid, prio) in enumerate(entries):
        for pref, wanted in enumerate(priority):
            if aid[: len(wanted)] == wanted:
                ranked.append((prio, pref, n, aid))
                break
    if not ranked:
        raise EmvError("no supported application on the card", UNSUPPORTED)
    ranked.sort()
    return [r[3] for r in ranked]


def _fci(response, name, partial=False):
    """The FCI objects of a SELECT answer, or None when the card did not select `name` (status not
    90 00, or a DF name 84 that is not the name selected, or with `partial` does not start with it)."""
    if status(response) != 0x9000:
        return None
    objects = parse(bytes(response[:-2]), "FCI")
    if len(objects) != 1 or objects[0][0] != 0x6F or not objects[0][2]:
        return None
    df = tlv.find(objects[0][2], T_DF_NAME)
    if df is None or (df[: len(name)] != name if partial else df != name):
        return None
    return objects


async def directory(exchange):
    """(AID, priority) entries of the card's directory: PPSE, else PSE; None when the card has neither."""
    for name in (PPSE, PSE):
        fci = _fci(await send(exchange, select(name)), name)
        if fci is None:
            continue
        entries = []
        _entries(fci, entries)
        sfi = tlv.find(fci, T_SFI)
        if not entries and sfi is not None and len(sfi) == 1 and 1 <= sfi[0] <= 30:
            for number in range(1, MAX_DIRECTORY_RECORDS + 1):  # directory-only card: entries in records
                response = await send(exchange, read_record(sfi[0], number))
                if status(response) == 0x6A83:
                    break
                _entries(parse(check(response, "READ RECORD (directory)"), "directory"), entries)
        return entries
    return None


async def start(exchange, terminal, priority=AID_PRIORITY):
    """Select the first candidate that selects and takes GET PROCESSING OPTIONS: (aid, GPO objects)."""
    entries = await directory(exchange)
    if entries is None:  # no directory: the list of AIDs method, the terminal's AIDs as partial names
        found = None
        for wanted in priority:
            fci = _fci(await send(exchange, select(wanted)), wanted, True)
            if fci is not None:
                found = [(tlv.find(fci, T_DF_NAME) or wanted, fci)]
                break
        if found is None:
            raise EmvError("no supported application on the card", UNSUPPORTED)
    else:
        found = [(aid, None) for aid in candidates(entries, priority)]
    refused = selected = False
    for aid, fci in found:
        if fci is None:
            fci = _fci(await send(exchange, select(aid)), aid)
            if fci is None:
                continue  # 6A82, a blocked application or another DF's FCI: the next candidate
        selected = True
        pdol = tlv.find(fci, T_PDOL)
        response = await send(exchange, gpo(fill_dol(pdol, terminal) if pdol else b""))
        if status(response) in (0x6984, 0x6985, 0x6986):  # conditions of use not satisfied: the next one
            refused = True
            continue
        return aid, parse(check(response, "GPO"), "GPO")
    if refused:
        raise EmvError("the card refused the transaction", REFUSED)
    raise EmvError("no application could be selected" if not selected else "no application left")
