"""EMV contactless read for deferred authorisation (the transit "read now, authorise later" model).

SELECT PPSE (2PAY.SYS.DDF01) -> choose an application by the terminal's priority list -> SELECT it ->
GET PROCESSING OPTIONS with the PDOL filled from terminal data -> READ RECORD for every AFL entry ->
(GENERATE AC for an ARQC when the card gave no cryptogram yet, as M/Chip cards do) -> the data the
host needs to authorise later: PAN (or token), expiry, track-2 equivalent, 9F26/9F27/9F36/9F10, the
unpredictable number 9F37, AIP, AID.

Pure logic over an `exchange(apdu) -> response` coroutine, so it is tested on CPython and MicroPython
with scripted card answers.  Every malformed answer (status word, TLV, missing data, impossible AFL)
raises EmvError carrying a short reason; nothing else escapes.  The PAN never leaves this module in
clear: `sensitive()` returns the TLV that callers seal at once (see firmware/app.py).
"""

from protocol import tlv

PPSE = b"2PAY.SYS.DDF01"
UNIONPAY_DEBIT = b"\xa0\x00\x00\x03\x33\x01\x01\x01"
UNIONPAY_CREDIT = b"\xa0\x00\x00\x03\x33\x01\x01\x02"
UNIONPAY_QUASI_CREDIT = b"\xa0\x00\x00\x03\x33\x01\x01\x03"
VISA = b"\xa0\x00\x00\x00\x03\x10\x10"
MASTERCARD = b"\xa0\x00\x00\x00\x04\x10\x10"
AID_PRIORITY = (UNIONPAY_DEBIT, UNIONPAY_CREDIT, UNIONPAY_QUASI_CREDIT, VISA, MASTERCARD)

# Terminal transaction qualifiers (9F66): contactless EMV mode, online capable (deferred online),
# offline data authentication for online authorisations not supported.
DEFAULT_TTQ = b"\x36\x00\x40\x00"
CURRENCY_CNY = b"\x01\x56"
COUNTRY_CN = b"\x01\x56"

MAX_RECORDS = 16
NUMERIC_TAGS = (0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9A, 0x9C, 0x9F21)

T_PAN = 0x5A
T_TRACK2 = 0x57
T_EXPIRY = 0x5F24
T_PSN = 0x5F34
T_AC = 0x9F26
T_CID = 0x9F27
T_ATC = 0x9F36
T_IAD = 0x9F10
T_UN = 0x9F37
T_AIP = 0x82
T_AFL = 0x94
T_AID = 0x4F
T_DF_NAME = 0x84
T_PDOL = 0x9F38
T_CDOL1 = 0x8C

_KEEP = (T_PAN, T_TRACK2, T_EXPIRY, T_PSN, T_AC, T_CID, T_ATC, T_IAD, T_AIP, T_CDOL1)


class EmvError(ValueError):
    """A card answer the terminal cannot use; str(e) is the rejection reason (no card data in it)."""


def bcd(value, nbytes):
    """`value` (int >= 0) as `nbytes` of packed BCD, e.g. amounts (9F02) and dates (9A)."""
    out = bytearray(nbytes)
    for i in range(nbytes - 1, -1, -1):
        out[i] = (value % 10) | ((value // 10 % 10) << 4)
        value //= 100
    return bytes(out)


def bcd_date(epoch_s):
    """YYMMDD (9A) for seconds since 1970, without gmtime (whose epoch differs between ports)."""
    z = epoch_s // 86400 + 719468  # days since 0000-03-01 (proleptic Gregorian civil calendar)
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return bcd(year % 100, 1) + bcd(month, 1) + bcd(day, 1)


def terminal_data(amount, un, epoch_s, ttq=DEFAULT_TTQ):
    """The values a PDOL or CDOL may ask for, by tag."""
    return {
        0x9F66: ttq,
        0x9F02: bcd(amount, 6),
        0x9F03: bytes(6),
        0x9F1A: COUNTRY_CN,
        0x5F2A: CURRENCY_CNY,
        0x9A: bcd_date(epoch_s),
        0x9C: b"\x00",
        T_UN: bytes(un),
        0x95: bytes(5),
        0x9F35: b"\x25",  # merchant terminal, unattended, offline with online capability
        0x9F33: b"\xe0\x08\x08",
        0x9F40: b"\x60\x00\x00\x10\x01",
        0x9F4E: bytes(20),
    }


def select(name):
    return b"\x00\xa4\x04\x00" + bytes((len(name),)) + bytes(name) + b"\x00"


def read_record(sfi, number):
    return bytes((0x00, 0xB2, number, (sfi << 3) | 4, 0x00))


def gpo(pdol_data):
    body = tlv.encode(0x83, pdol_data)
    return b"\x80\xa8\x00\x00" + bytes((len(body),)) + body + b"\x00"


def generate_ac(cdol_data):
    # P1 0x80: ask for an ARQC (go online), which is what deferred authorisation needs.
    return b"\x80\xae\x80\x00" + bytes((len(cdol_data),)) + bytes(cdol_data) + b"\x00"


def check(response, what):
    """The data of a response APDU whose status word is 90 00; EmvError otherwise."""
    if len(response) < 2:
        raise EmvError("%s: response shorter than a status word" % what)
    sw1, sw2 = response[-2], response[-1]
    if sw1 != 0x90 or sw2 != 0x00:
        raise EmvError("%s: status %02X%02X" % (what, sw1, sw2))
    return bytes(response[:-2])


def parse(data, what):
    try:
        return tlv.decode(data)
    except tlv.TlvError as e:
        raise EmvError("%s: bad TLV (%s)" % (what, e))


def dol_items(dol):
    """(tag, length) pairs of a data object list (tags and lengths only, no values)."""
    out = []
    i, n = 0, len(dol)
    try:
        while i < n:
            tag, _, i = tlv._read_tag(dol, i, n)
            length, i = tlv._read_length(dol, i, n)
            out.append((tag, length))
    except tlv.TlvError as e:
        raise EmvError("bad DOL (%s)" % e)
    return out


def fill_dol(dol, values):
    """Concatenate the DOL's values from `values`: numeric fields right-aligned, others left-aligned,
    unknown tags zero-filled (EMV Book 3, 5.4)."""
    out = bytearray()
    total = 0
    for tag, length in dol_items(dol):
        total += length
        if total > 252:
            raise EmvError("DOL asks for %d bytes" % total)
        v = values.get(tag, b"")
        if len(v) >= length:
            out += v[len(v) - length :] if tag in NUMERIC_TAGS else v[:length]
        elif tag in NUMERIC_TAGS:
            out += bytes(length - len(v)) + v
        else:
            out += v + bytes(length - len(v))
    return bytes(out)


def choose_aid(ppse_objects, priority=AID_PRIORITY):
    """The first AID of `priority` (matched as a prefix) that the PPSE directory lists."""
    offered = []
    _collect_entries(ppse_objects, offered)
    if not offered:
        raise EmvError("PPSE lists no applications")
    for wanted in priority:
        for aid in offered:
            if aid[: len(wanted)] == wanted:
                return aid
    raise EmvError("no supported application on the card")


def _collect_entries(objects, out):
    for tag, _, children in objects:
        if tag == 0x61 and children:
            aid = tlv.find(children, T_AID)
            if aid is not None and 5 <= len(aid) <= 16 and len(out) < 8:
                out.append(aid)
        elif children:
            _collect_entries(children, out)


def afl_entries(afl):
    """(sfi, record) pairs to read, from 4-byte AFL entries; EmvError for an impossible AFL."""
    if not afl or len(afl) % 4:
        raise EmvError("AFL of %d bytes" % len(afl))
    out = []
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first or afl[i + 3] > last - first + 1:
            raise EmvError("bad AFL entry %d" % (i // 4))
        for rec in range(first, last + 1):
            out.append((sfi, rec))
            if len(out) > MAX_RECORDS:
                raise EmvError("AFL names more than %d records" % MAX_RECORDS)
    return out


def _keep(objects, found):
    for tag, value, children in objects:
        if children is not None:
            _keep(children, found)
        elif tag in _KEEP:
            if tag in found and found[tag] != value:
                raise EmvError("card sent two different values for tag %X" % tag)
            found[tag] = value


def pan_from_track2(track2):
    """The account digits of a track-2 equivalent (57): BCD digits up to the separator D."""
    digits = bytes(track2).hex().upper()
    sep = digits.find("D")
    if sep < 12 or sep > 19 or not digits[:sep].isdigit():
        raise EmvError("track 2 equivalent malformed")
    return digits[:sep], digits[sep + 1 : sep + 5]


async def read(exchange, terminal, priority=AID_PRIORITY):
    """Run the read; returns a dict of the card data (bytes values, "pan" and "expiry" as digits)."""
    fci = parse(check(await exchange(select(PPSE)), "SELECT PPSE"), "PPSE")
    aid = choose_aid(fci, priority)
    adf = parse(check(await exchange(select(aid)), "SELECT AID"), "FCI")
    pdol = tlv.find(adf, T_PDOL)
    opts = parse(check(await exchange(gpo(fill_dol(pdol, terminal) if pdol else b"")), "GPO"), "GPO")
    found = {}
    if len(opts) == 1 and opts[0][0] == 0x80:  # format 1: AIP || AFL
        raw = opts[0][1]
        if len(raw) < 2:
            raise EmvError("GPO format 1 too short")
        found[T_AIP] = raw[:2]
        afl = raw[2:]
    elif len(opts) == 1 and opts[0][0] == 0x77 and opts[0][2] is not None:
        _keep(opts[0][2], found)
        afl = tlv.find(opts[0][2], T_AFL) or b""
    else:
        raise EmvError("GPO answer is neither format 1 nor 2")
    if afl:
        for sfi, rec in afl_entries(afl):
            objects = parse(check(await exchange(read_record(sfi, rec)), "READ RECORD"), "record")
            if len(objects) != 1 or objects[0][0] != 0x70 or objects[0][2] is None:
                raise EmvError("record %d.%d is not a 70 template" % (sfi, rec))
            _keep(objects[0][2], found)
    if T_AC not in found and T_CDOL1 in found:
        ac = parse(check(await exchange(generate_ac(fill_dol(found[T_CDOL1], terminal))), "GENERATE AC"), "AC")
        if len(ac) == 1 and ac[0][0] == 0x80 and len(ac[0][1]) >= 11:
            raw = ac[0][1]
            found[T_CID], found[T_ATC], found[T_AC], found[T_IAD] = raw[0:1], raw[1:3], raw[3:11], raw[11:]
        elif len(ac) == 1 and ac[0][0] == 0x77 and ac[0][2] is not None:
            _keep(ac[0][2], found)
        else:
            raise EmvError("GENERATE AC answer malformed")
    return _result(aid, found, terminal)


def _result(aid, found, terminal):
    for tag, name in ((T_AIP, "AIP"), (T_AC, "cryptogram"), (T_CID, "CID"), (T_ATC, "ATC")):
        if tag not in found:
            raise EmvError("card gave no %s" % name)
    if len(found[T_ATC]) != 2 or len(found[T_AC]) != 8 or len(found[T_CID]) != 1:
        raise EmvError("cryptogram data has wrong lengths")
    track2 = found.get(T_TRACK2)
    pan = None
    expiry = None
    if track2 is not None:
        pan, expiry = pan_from_track2(track2)
    if T_PAN in found:
        digits = found[T_PAN].hex().upper().rstrip("F")
        if not 12 <= len(digits) <= 19 or not digits.isdigit():
            raise EmvError("PAN malformed")
        if pan is not None and pan != digits:
            raise EmvError("PAN and track 2 disagree")
        pan = digits
    if pan is None:
        raise EmvError("card gave no account number")
    if T_EXPIRY in found:
        expiry = found[T_EXPIRY].hex()[:4]
    if expiry is None or len(expiry) != 4 or not expiry.isdigit():
        raise EmvError("card gave no expiry date")
    return {
        "aid": aid, "pan": pan, "expiry": expiry, "track2": track2, "ac": found[T_AC], "cid": found[T_CID],
        "atc": found[T_ATC], "iad": found.get(T_IAD, b""), "aip": found[T_AIP], "un": terminal.get(T_UN, b""),
        "psn": found.get(T_PSN, b""),
    }


def sensitive(card):
    """The data that must leave the reader only sealed: PAN, expiry, track 2, cryptogram (as TLV)."""
    pan = card["pan"]
    if len(pan) % 2:
        pan += "F"
    out = tlv.encode(T_PAN, bytes.fromhex(pan)) + tlv.encode(T_EXPIRY, bytes.fromhex(card["expiry"]))
    if card["track2"] is not None:
        out += tlv.encode(T_TRACK2, card["track2"])
    return out + tlv.encode(T_AC, card["ac"])


def clear_data(card):
    """What the host needs in clear beside the sealed part: CID, ATC, IAD, UN, AIP, PAN sequence."""
    out = tlv.encode(T_CID, card["cid"]) + tlv.encode(T_ATC, card["atc"]) + tlv.encode(T_UN, card["un"])
    out += tlv.encode(T_AIP, card["aip"]) + tlv.encode(T_IAD, card["iad"])
    if card["psn"]:
        out += tlv.encode(T_PSN, card["psn"])
    return out
