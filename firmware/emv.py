"""EMV contactless read for deferred authorisation (the transit "read now, authorise later" model).

Application selection and GET PROCESSING OPTIONS (firmware/emv_select.py), READ RECORD for every AFL
entry, GENERATE AC asking for an ARQC when the card gave no cryptogram yet (M/Chip), and the checks the
card data carries: expiration (5F24, else track 2) and effective date (5F25) against the board's date,
the cryptogram type (9F27, or when a Visa or UnionPay card leaves it out, CVR byte 2 of the issuer
application data 9F10, see cryptogram_type) and the card's CTQ (9F6C, see check_ctq).  The PDOL's
amount is the one the decision charges (firmware/decision.py amount_for).

What the terminal tells the card (TTQ 9F66, terminal capabilities 9F33) is what it does: protocol/SPEC.md
"EMV contactless read".  Pure logic over an `exchange(apdu) -> response` coroutine, tested on CPython
and MicroPython with scripted answers.  Every unusable answer raises EmvError (firmware/emv_apdu.py)
with a code (READ, UNSUPPORTED, EXPIRED, NOT_EFFECTIVE, CVM, REFUSED) and a short text without card
data; nothing else escapes.  The card data leaves the reader only through firmware/emv_data.py.
"""

from firmware import emv_select
from firmware.emv_apdu import (  # noqa: F401 (the reader's API: nfc.py and tests use them as emv.X)
    CARD_REMOVED,
    CVM,
    EXPIRED,
    NOT_EFFECTIVE,
    READ,
    READER_FAILED,
    REFUSED,
    UNSUPPORTED,
    EmvError,
    check,
    fill_dol,
    generate_ac,
    gpo,
    parse,
    read_record,
    select,
    send,
)
from firmware.emv_data import T_AC, T_AIP, T_ATC, T_CID, T_EXPIRY, T_IAD, T_PAN, T_PSN, T_TRACK2, T_UN
from firmware.emv_select import (  # noqa: F401
    AID_PRIORITY,
    MASTERCARD,
    PPSE,
    PSE,
    RID_MASTERCARD,
    RID_UNIONPAY,
    RID_VISA,
    UNIONPAY_CREDIT,
    UNIONPAY_DEBIT,
    VISA,
    candidates,
)
from protocol import dates, tlv

# TTQ (9F66, Book C-3 / qPBOC): byte 1 = 20: EMV (qVSDC/qPBOC) mode only: no MSD, no contact chip,
# not offline-only (it authorises every tap online, later), no online PIN, no signature, no offline
# data authentication; byte 2 = 80: online cryptogram required, CVM not required; byte 3 = 40: a CVM
# done on the consumer's phone is accepted; byte 4 = 00 (no fDDA).
DEFAULT_TTQ = b"\x20\x80\x40\x00"
# Terminal capabilities (9F33, Book 4 A2): no manual entry, magnetic stripe or contact chip; CVM: no
# CVM required only; security: no SDA, DDA, CDA or card capture.
TERMINAL_CAPABILITIES = b"\x00\x08\x00"
CURRENCY_CNY = b"\x01\x56"
COUNTRY_CN = b"\x01\x56"

# Cryptogram Information Data, bits 8-7 (Book 3 table 14).
AAC = 0x00
TC = 0x40
ARQC = 0x80

MAX_RECORDS = 16

T_EFFECTIVE = 0x5F25
T_AFL = 0x94
T_CDOL1 = 0x8C
T_CTQ = 0x9F6C
T_AMOUNT = 0x9F02
T_DATE = 0x9A

_KEEP = (T_PAN, T_TRACK2, T_EXPIRY, T_EFFECTIVE, T_PSN, T_AC, T_CID, T_ATC, T_IAD, T_AIP, T_CDOL1, T_CTQ)


def bcd(value, nbytes):
    """`value` (int >= 0) as `nbytes` of packed BCD, e.g. amounts (9F02) and dates (9A)."""
    out = bytearray(nbytes)
    for i in range(nbytes - 1, -1, -1):
        out[i] = (value % 10) | ((value // 10 % 10) << 4)
        value //= 100
    return bytes(out)


def bcd_date(epoch_s):
    """YYMMDD (9A) for seconds since 1970, without gmtime (whose epoch differs between ports)."""
    year, month, day = dates.civil(epoch_s)
    return bcd(year % 100, 1) + bcd(month, 1) + bcd(day, 1)


def terminal_data(amount, un, epoch_s, ttq=DEFAULT_TTQ):
    """The values a PDOL or CDOL may ask for, by tag; `amount` (fen) is what the card is asked to sign."""
    return {
        0x9F66: ttq,
        T_AMOUNT: bcd(amount, 6),
        0x9F03: bytes(6),
        0x9F1A: COUNTRY_CN,
        0x5F2A: CURRENCY_CNY,
        T_DATE: bcd_date(epoch_s),
        0x9C: b"\x00",  # purchase of goods or services
        T_UN: bytes(un),
        0x95: bytes(5),
        0x9F35: b"\x25",  # merchant terminal, unattended, offline with online capability
        0x9F33: TERMINAL_CAPABILITIES,
        0x9F40: b"\x20\x00\x00\x10\x01",  # services; display for the cardholder; code table 1
        0x9F4E: bytes(20),
    }


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
    """The account digits and expiry (YYMM) of a track-2 equivalent (57): BCD digits, separator D."""
    digits = bytes(track2).hex().upper()
    sep = digits.find("D")
    if sep < 12 or sep > 19 or not digits[:sep].isdigit() or not digits[sep + 1 : sep + 5].isdigit():
        raise EmvError("track 2 equivalent malformed")
    return digits[:sep], digits[sep + 1 : sep + 5]


def cryptogram_type(aid, found):
    """The CID's cryptogram type (AAC, TC or ARQC): 9F27 when the card gave it; else, for Visa and
    UnionPay, bits 6-5 of CVR byte 2 in the issuer application data ("type returned in the first
    GENERATE AC or GPO": 00 AAC, 01 TC, 10 ARQC).  That byte is 9F10 byte 5 in Visa IAD formats 0/1/3
    (06 DKI CVN 03 CVR...) and in UnionPay's (07 DKI CVN 03 CVR...), and in Visa formats 2/4
    (1F CVN DKI CVR1 CVR2..., 32 bytes)."""
    cid = found.get(T_CID)
    if cid is not None:
        if len(cid) != 1:
            raise EmvError("CID of %d bytes" % len(cid))
        kind = cid[0] & 0xC0
    else:
        iad = found.get(T_IAD, b"")
        if aid[:5] not in (RID_VISA, RID_UNIONPAY) or not (
            (len(iad) >= 7 and iad[0] in (0x06, 0x07) and iad[3] == 0x03) or (len(iad) == 32 and iad[0] == 0x1F)
        ):
            raise EmvError("card gave no CID")
        kind = (AAC, TC, ARQC, 0xC0)[(iad[4] >> 4) & 0x03]
    if kind == 0xC0:
        raise EmvError("cryptogram type RFU")
    return kind


def _yymmdd(value):
    """YYMMDD digits as a comparable int with the century (Book 4 6.7.3: YY < 50 is 20YY)."""
    digits = bytes(value).hex()
    if len(digits) != 6 or not digits.isdigit():
        raise EmvError("card date malformed")
    n = int(digits)
    return n + (20000000 if n < 500000 else 19000000)


def check_dates(found, today):
    """EmvError(EXPIRED) when the application expired before `today` (9A, YYMMDD), from 5F24, else
    the track-2 YYMM (valid to the end of that month); EmvError(NOT_EFFECTIVE) before 5F25."""
    now = _yymmdd(today)
    if T_EXPIRY in found:
        expiry = _yymmdd(found[T_EXPIRY])
    elif T_TRACK2 in found:
        expiry = _yymmdd(bytes.fromhex(pan_from_track2(found[T_TRACK2])[1] + "31"))
    else:
        raise EmvError("card gave no expiry date")
    if expiry < now:
        raise EmvError("card expired", EXPIRED)
    if T_EFFECTIVE in found and _yymmdd(found[T_EFFECTIVE]) > now:
        raise EmvError("card not yet effective", NOT_EFFECTIVE)


def check_ctq(found):
    """The card's CTQ (9F6C, Book C-3): online PIN (byte 1 bit 8) or a signature (bit 7) required,
    and no CVM done on the phone (byte 2 bit 8): this terminal can do neither, EmvError(CVM).  The
    other bits ask what to do when offline data authentication fails or the card expired: this
    terminal never approves on offline data authentication and declines expired cards, so they
    change nothing."""
    ctq = found.get(T_CTQ)
    if ctq is None or len(ctq) < 2:
        return
    if ctq[0] & 0xC0 and not ctq[1] & 0x80:
        raise EmvError("card requires a PIN or signature", CVM)


async def read(exchange, terminal, priority=AID_PRIORITY):
    """Run the read; returns a dict of the card data (bytes values, "pan" and "expiry" as digits,
    "amount" the fen the card was asked to sign, "cid" the cryptogram type byte)."""
    aid, opts = await emv_select.start(exchange, terminal, priority)
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
    aip = found.get(T_AIP, b"")
    if aid[:5] == RID_MASTERCARD and len(aip) == 2 and not aip[1] & 0x80:  # Book C-2: no EMV mode
        raise EmvError("card offers mag-stripe mode only", UNSUPPORTED)
    if afl:
        for sfi, rec in afl_entries(afl):
            data = check(await send(exchange, read_record(sfi, rec)), "READ RECORD")
            if sfi > 10:
                continue  # SFI 11-30: issuer-proprietary files, not EMV data objects (Book 3 10.2)
            objects = parse(data, "record")
            if len(objects) != 1 or objects[0][0] != 0x70 or objects[0][2] is None:
                raise EmvError("record %d.%d is not a 70 template" % (sfi, rec))
            _keep(objects[0][2], found)
    check_dates(found, terminal.get(T_DATE, b""))
    if T_AC not in found:
        if T_CDOL1 not in found:
            raise EmvError("card gave no cryptogram")
        ac = parse(check(await send(exchange, generate_ac(fill_dol(found[T_CDOL1], terminal))), "GENERATE AC"), "AC")
        if len(ac) == 1 and ac[0][0] == 0x80 and len(ac[0][1]) >= 11:
            raw = ac[0][1]
            found[T_CID], found[T_ATC], found[T_AC], found[T_IAD] = raw[0:1], raw[1:3], raw[3:11], raw[11:]
        elif len(ac) == 1 and ac[0][0] == 0x77 and ac[0][2] is not None:
            _keep(ac[0][2], found)
        else:
            raise EmvError("GENERATE AC answer malformed")
    kind = cryptogram_type(aid, found)
    check_ctq(found)
    return _result(aid, found, terminal, kind)


def _result(aid, found, terminal, kind):
    for tag, name in ((T_AIP, "AIP"), (T_AC, "cryptogram"), (T_ATC, "ATC")):
        if tag not in found:
            raise EmvError("card gave no %s" % name)
    if len(found[T_ATC]) != 2 or len(found[T_AC]) != 8:
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
    amount = bytes(terminal.get(T_AMOUNT, b"")).hex()
    return {
        "aid": aid, "pan": pan, "expiry": expiry, "track2": track2, "ac": found[T_AC],
        "cid": found.get(T_CID) or bytes((kind,)), "atc": found[T_ATC], "iad": found.get(T_IAD, b""),
        "aip": found[T_AIP], "un": terminal.get(T_UN, b""),
        "psn": found.get(T_PSN, b""), "amount": int(amount) if amount.isdigit() else 0,
    }
