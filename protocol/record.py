"""The transaction record: what the journal stores and the link carries.

Binary, little-endian, versioned.  A fixed 44-byte header is followed by tag-length-value extension
fields (tag u8, length u8), so a newer terminal can add fields that an older reader skips.

    off size field
    0   1    version (1)
    1   1    kind        KIND_*: what the passenger presented
    2   1    decision    ACCEPTED / DECLINED
    3   1    reason      REASON_*: why (0 when accepted)
    4   8    terminal id
    12  4    sequence    per terminal, monotonic, never reused
    16  4    time        seconds since 1970 (board RTC)
    20  4    amount      in minor units (fen)
    24  2    currency    ISO 4217 numeric (156 = CNY)
    26  2    fare id     which fare or rule decided
    28  16   credential token: a salted hash, never the card number
    44  ...  extensions  EXT_*
"""

import struct

VERSION = 1
HEADER = "<BBBB8sIIIHH16s"
HEADER_SIZE = 44
MAX_SIZE = 255

KIND_UNKNOWN = 0  # declined before the credential was identified (unknown code, line too long, ...)
KIND_QR_CPM = 1
KIND_TICKET = 2
KIND_EMV_CONTACTLESS = 3
KIND_SEAL_KEY = 4  # no tap: one part of an epoch key wrapped to the collector (protocol/seal.py)
KIND_SEQ_JUMP = 5  # no tap: the sequence continues above the host's seq_high (EXT_SEQ_JUMP: the numbers skipped)
KIND_RIDE_CODE = 6  # an offline ride code (protocol/ridecode.py), billed by the ride-code platform (EXT_RIDE)
KIND_PAYMENT_CODE = 7  # a numeric payment code (protocol/paycode.py), authorised online or deferred
KIND_SCHOOL_PASS = 8  # a student pass on the school bus: boarding or alighting (EXT_SCHOOL), no money

ACCEPTED = 1
DECLINED = 2

REASON_NONE = 0
REASON_UNREADABLE = 1
REASON_TOO_LONG = 2
REASON_UNKNOWN_FORMAT = 3
REASON_DENY_LISTED = 4
REASON_JOURNAL_FULL = 5
REASON_MALFORMED = 6
REASON_TICKET_BAD_SIGNATURE = 7
REASON_TICKET_UNKNOWN_KEY = 8
REASON_TICKET_KEY_REVOKED = 9
REASON_TICKET_NOT_YET_VALID = 10
REASON_TICKET_EXPIRED = 11
REASON_TICKET_USED_UP = 12
REASON_TICKET_NO_CLOCK = 13
REASON_TICKET_MALFORMED = 14
REASON_TICKET_REVOKED = 15
REASON_CARD_READ = 20  # contactless read failed or the card answered nonsense
REASON_CARD_UNSUPPORTED = 21  # no accepted application on the card
REASON_CARD_DECLINED = 22  # the card itself declined (AAC)
REASON_CARD_EXPIRED = 23  # the card's application expired before the board's date
REASON_CARD_NOT_EFFECTIVE = 24  # the card's application is not valid before a later date
REASON_CARD_CVM = 25  # the card requires online PIN or a signature, which this terminal cannot take
REASON_CARD_OFFLINE = 26  # the card approved offline (TC): no online cryptogram to authorise later
REASON_CARD_REFUSED = 27  # the card or phone refused the transaction (GPO 6984/6985/6986)
REASON_CARD_REMOVED = 28  # the card left the field before the read was complete
REASON_TERMINAL_ERROR = 40  # the terminal failed while deciding (a bug): declined, never charged
# EMV QRCPS payment codes refused by the terminal's own checks (protocol/cpm.py check, SPEC.md).
REASON_CPM_BAD_PAN = 30  # account number malformed or failing its Luhn check digit
REASON_CPM_EXPIRED = 31  # expiry (5F24, or YYMM of track 2) before the board's date
REASON_CPM_NO_CRYPTOGRAM = 32  # no 8-byte application cryptogram 9F26
REASON_CPM_NO_CID = 33  # no cryptogram information data 9F27
REASON_CPM_AAC = 34  # 9F27 says AAC: the wallet declined the payment itself
REASON_CPM_NOT_ARQC = 35  # 9F27 says TC (or RFU): deferred authorisation needs an ARQC
REASON_CPM_NO_ATC = 36  # no application transaction counter 9F36
REASON_CPM_NO_ACCOUNT = 37  # neither PAN 5A nor track 2 57: not a payment code
REASON_CPM_NO_EXPIRY = 38  # no expiry, or one that is not a date
REASON_NO_TOKEN_KEY = 42  # a payment tap on a terminal that holds no fleet token key (protocol/tokens.py)
REASON_NO_SEAL_KEY = 41  # no collector public key: card data cannot be sealed, so it is not taken
# Numeric payment codes (protocol/paycode.py, SPEC.md "Payment codes").
REASON_PAYCODE_MALFORMED = 43  # all digits with a family's prefix but not its length
REASON_PAYCODE_DECLINED = 44  # the issuer declined the online authorisation
REASON_PAYCODE_NO_ANSWER = 45  # no ONLINE_RESULT by the deadline, or the host answered "unavailable"
REASON_PAYCODE_OFFLINE = 46  # the uplink is down and the policy is "decline" (the default)
REASON_PAYCODE_OVER_CAP = 47  # the uplink is down, policy "defer", but the fare is over the per-code cap
# Ride codes refused by protocol/ridecode.py (SPEC.md "Ride codes"), one reason per verdict.
REASON_RIDE_MALFORMED = 60
REASON_RIDE_NO_CLOCK = 61
REASON_RIDE_UNKNOWN_ROOT = 62
REASON_RIDE_ISSUER_REVOKED = 63
REASON_RIDE_ISSUER_SIGNATURE = 64
REASON_RIDE_ISSUER_EXPIRED = 65
REASON_RIDE_USER_SIGNATURE = 66
REASON_RIDE_USER_EXPIRED = 67
REASON_RIDE_CODE_SIGNATURE = 68
REASON_RIDE_TOO_OLD = 69
REASON_RIDE_FUTURE = 70
REASON_RIDE_ALREADY_USED = 71
# offline risk per credential (firmware/risk.py, limits: protocol/risk.py)
REASON_REPLAY = 80  # a transaction counter lower than one already accepted from this credential
REASON_DAILY_RIDES = 81  # the credential's accepted taps today reached the daily cap
REASON_DAILY_AMOUNT = 82  # this fare would take the credential's amount today over the daily cap
REASON_NEW_RIDES = 83  # the same, on the day the credential was first seen here (first-ride caps)
REASON_NEW_AMOUNT = 84
# Scenic gate and school bus (firmware/gate.py, SPEC.md "Scenic gate", "School bus").
REASON_PASSBACK = 95  # a new entry of the ticket too soon after its last admission (anti-passback)
REASON_NOT_ON_ROSTER = 96  # the student pass is not on the school's roster
REASON_NO_ROSTER = 97  # a school bus without a roster: no pass can be checked
REASON_NOT_TODAY = 98  # on the roster, but not for today's date or weekday
REASON_RESCANNED = 99  # the same pass again within the profile's rescan_s: neither boarding nor alighting
REASON_NOT_STUDENT_PASS = 100  # a ticket of another product shown on the school bus
REASON_USED_ELSEWHERE = 101  # a ticket used up at another gate: the host put its token on the deny list
REASON_PASSES_ONLY = 102  # a payment credential on the school bus, which takes no money

REASON_TEXT = {
    REASON_NONE: "ok",
    REASON_UNREADABLE: "unreadable",
    REASON_TOO_LONG: "too long",
    REASON_UNKNOWN_FORMAT: "unknown code",
    REASON_DENY_LISTED: "card blocked",
    REASON_JOURNAL_FULL: "terminal full",
    REASON_MALFORMED: "bad payment code",
    REASON_TICKET_BAD_SIGNATURE: "forged ticket",
    REASON_TICKET_UNKNOWN_KEY: "unknown issuer",
    REASON_TICKET_KEY_REVOKED: "issuer key revoked",
    REASON_TICKET_NOT_YET_VALID: "not valid yet",
    REASON_TICKET_EXPIRED: "ticket expired",
    REASON_TICKET_USED_UP: "ticket used up",
    REASON_TICKET_NO_CLOCK: "clock not set",
    REASON_TICKET_MALFORMED: "bad ticket",
    REASON_TICKET_REVOKED: "ticket revoked",
    REASON_CARD_READ: "card read failed",
    REASON_CARD_UNSUPPORTED: "card not accepted",
    REASON_CARD_DECLINED: "card declined",
    REASON_CARD_EXPIRED: "card expired",
    REASON_CARD_NOT_EFFECTIVE: "card not valid yet",
    REASON_CARD_CVM: "PIN needed",
    REASON_CARD_OFFLINE: "card offline only",
    REASON_CARD_REFUSED: "card refused",
    REASON_CARD_REMOVED: "card removed",
    REASON_TERMINAL_ERROR: "terminal error",
    REASON_NO_TOKEN_KEY: "not set up for cards",
    REASON_CPM_BAD_PAN: "bad card number",
    REASON_CPM_EXPIRED: "card expired",
    REASON_CPM_NO_CRYPTOGRAM: "no cryptogram",
    REASON_CPM_NO_CID: "no code type",
    REASON_CPM_AAC: "code declined",
    REASON_CPM_NOT_ARQC: "code not online",
    REASON_CPM_NO_ATC: "no counter",
    REASON_CPM_NO_ACCOUNT: "no card number",
    REASON_CPM_NO_EXPIRY: "no expiry date",
    REASON_NO_SEAL_KEY: "no host key",
    REASON_PAYCODE_MALFORMED: "bad pay code",
    REASON_PAYCODE_DECLINED: "code declined",
    REASON_PAYCODE_NO_ANSWER: "no answer",
    REASON_PAYCODE_OFFLINE: "network needed",
    REASON_PAYCODE_OVER_CAP: "over code limit",
    REASON_RIDE_MALFORMED: "bad ride code",
    REASON_RIDE_NO_CLOCK: "clock not set",
    REASON_RIDE_UNKNOWN_ROOT: "unknown ride scheme",
    REASON_RIDE_ISSUER_REVOKED: "ride issuer revoked",
    REASON_RIDE_ISSUER_SIGNATURE: "forged ride issuer",
    REASON_RIDE_ISSUER_EXPIRED: "ride issuer expired",
    REASON_RIDE_USER_SIGNATURE: "forged ride account",
    REASON_RIDE_USER_EXPIRED: "ride account expired",
    REASON_RIDE_CODE_SIGNATURE: "forged ride code",
    REASON_RIDE_TOO_OLD: "code too old",
    REASON_RIDE_FUTURE: "code from future",
    REASON_RIDE_ALREADY_USED: "already used",
    REASON_REPLAY: "replayed code",
    REASON_DAILY_RIDES: "daily ride limit",
    REASON_DAILY_AMOUNT: "daily amount limit",
    REASON_NEW_RIDES: "new card ride limit",
    REASON_NEW_AMOUNT: "new card amount limit",
    REASON_PASSBACK: "passback: wait",
    REASON_NOT_ON_ROSTER: "not on roster",
    REASON_NO_ROSTER: "no roster",
    REASON_NOT_TODAY: "not riding today",
    REASON_RESCANNED: "already scanned",
    REASON_NOT_STUDENT_PASS: "not a student pass",
    REASON_USED_ELSEWHERE: "used at other gate",
    REASON_PASSES_ONLY: "student passes only",
}

EXT_ATC = 1  # application transaction counter of the credential (2 bytes)
EXT_AID = 2  # application identifier the credential used
EXT_TICKET = 3  # ticket: issuer u16, key id u8, ticket id 8 bytes, product u16 (big-endian), entry number u8
# EMV contactless (SPEC.md "EMV contactless record extensions"): the host authorises from these.
EXT_RIDE = 40  # ride code: issuer u16, issuer key id u8, user id (8), counter u32, generated u32, product u16 (BE)
EXT_EMV_SEALED = 16  # protocol/seal.py: key id u32 LE, crypto.seal(epoch key, TLV 5A 5F24 [57] 9F26, token)
#   (a CPM code: whichever of 5A 57 5F24 9F26 it has)
EXT_EMV_DATA = 17  # clear TLV: 9F27 CID, 9F36 ATC, 9F37 UN, 82 AIP, 9F10 IAD, [5F34 PSN] (CPM: those it has)
EXT_SEAL_KEY = 18  # KIND_SEAL_KEY: key id u32 LE, part, parts, host key fingerprint (8), wrapped key chunk
EXT_SEQ_JUMP = 19  # KIND_SEQ_JUMP: first u32 LE, last u32 LE: the range of numbers retired, never issued
EXT_PAYCODE = 20  # KIND_PAYMENT_CODE: path u8 (PATH_*), family u8, request id u32 LE, then when approved
#   online: approval code (6 ASCII) and retrieval reference (12 ASCII)
EXT_TOKEN_KEY = 28  # version of the fleet token key the token was made under, u32 LE (protocol/tokens.py)
EXT_BUS_STOPS = 45  # bus ride: boarding stop u8, destination stop u8 (0xFF: not known), source u8 (busfare.SOURCE_*)
EXT_BUS_RULE = 46  # bus ride: fare rule u8 (busfare.RULE_*), the route's fare u32 LE before transfer or cap
EXT_CARD_AMOUNT = 47  # contactless card: the amount u32 LE the card signed (9F02), when the charge is below it
EXT_SCHOOL = 51  # KIND_SCHOOL_PASS: direction u8 (SCHOOL_*), issuer u16, pass id 8, product u16 (big-endian)
EXT_GUARDIAN = 52  # a boarding to notify the guardian of: the pass's holder reference (0..32 bytes)
EXT_ADMISSION = 53  # ticket: admissions used u16, entry u16, party u8, person u8, admissions allowed u16 (BE)
EXT_REPEATS = 50  # declined record: u16 LE count of identical declines coalesced into it (SPEC.md)
EXT_PROMO_ID = 56  # a promotion's discount (protocol/promotion.py): programme id u16 LE
EXT_PROMO_DISCOUNT = 57  # the discount u32 LE in fen: the fare before it was amount + discount
EXT_PROMO_DRAW = 58  # the draw u32 LE that granted it (the host recomputes it)

PATH_ONLINE = 1  # EXT_PAYCODE path: authorised online before the decision
PATH_DEFERRED = 2  # accepted offline under the per-code cap; the code is sealed and authorised later
SCHOOL_BOARD = 1  # EXT_SCHOOL direction: the pupil got on (a guardian notice goes with it)
SCHOOL_ALIGHT = 2  # the pupil got off

NO_TOKEN = bytes(16)  # the token of a declined tap whose credential was never identified


TAP_KINDS = (KIND_UNKNOWN, KIND_QR_CPM, KIND_TICKET, KIND_EMV_CONTACTLESS, KIND_RIDE_CODE, KIND_PAYMENT_CODE,
             KIND_SCHOOL_PASS)


def is_tap(kind):
    """True for records that stand for a passenger's tap (accepted or declined), not key or config records."""
    return kind in TAP_KINDS


class RecordError(ValueError):
    pass


def encode(terminal, seq, time_s, kind, amount, currency, decision, reason, fare_id, token, extensions=()):
    if len(token) != 16:
        raise RecordError("credential token must be 16 bytes")
    out = bytearray(struct.pack(HEADER, VERSION, kind, decision, reason, terminal, seq, time_s, amount,
                                currency, fare_id, token))
    for tag, value in extensions:
        if len(value) > 255:
            raise RecordError("extension %d longer than 255 bytes" % tag)
        out.append(tag)
        out.append(len(value))
        out += value
    if len(out) > MAX_SIZE:
        raise RecordError("record of %d bytes exceeds %d" % (len(out), MAX_SIZE))
    return bytes(out)


def decode(data):
    """The record as a dict; raises RecordError on anything malformed."""
    if len(data) < HEADER_SIZE:
        raise RecordError("record shorter than its %d-byte header" % HEADER_SIZE)
    fields = struct.unpack(HEADER, bytes(data[:HEADER_SIZE]))
    if fields[0] != VERSION:
        raise RecordError("unknown record version %d" % fields[0])
    rec = {
        "version": fields[0], "kind": fields[1], "decision": fields[2], "reason": fields[3],
        "terminal": fields[4], "seq": fields[5], "time": fields[6], "amount": fields[7],
        "currency": fields[8], "fare_id": fields[9], "token": fields[10], "ext": {},
    }
    i = HEADER_SIZE
    n = len(data)
    while i < n:
        if i + 2 > n:
            raise RecordError("truncated extension header at byte %d" % i)
        tag = data[i]
        length = data[i + 1]
        if i + 2 + length > n:
            raise RecordError("extension %d runs past the end of the record" % tag)
        rec["ext"][tag] = bytes(data[i + 2 : i + 2 + length])
        i += 2 + length
    return rec


def seq_of(data):
    return struct.unpack("<I", bytes(data[12:16]))[0]
