"""ISO 8583 between the collector and the acquirer host: the field layout, framing and response codes.

The layout is the China UnionPay switch (CUPS) acquirer format: MTI as 4 ASCII digits, binary primary
(and secondary) bitmap, numeric and text fields in ASCII, LL/LLL lengths as ASCII digits, PIN block
and ICC data (DE 55, EMV BER-TLV) binary.  Every message on the TCP connection is preceded by a
2-byte big-endian length of the message that follows (the usual TCP framing of ISO 8583 hosts).
host_sim/backend/ISO8583.md has the field map and an example in hex.  pyiso8583 does the bit-level
work; this module adds the checks a host needs before it trusts a message.
"""

import iso8583

from protocol import tlv

HEADER_SIZE = 2
MAX_MESSAGE = 4096  # bytes after the length header; an 0100 with full ICC data is about 300


def _field(desc, max_len, len_type=0, enc="ascii"):
    return {"data_enc": enc, "len_enc": "ascii", "len_type": len_type, "max_len": max_len, "desc": desc}


# Every field the CUPS layout defines that a message here or a captured CUPS message may carry;
# host_sim/backend/ISO8583.md says which ones the collector and the acquirer host use.
SPEC = {
    "h": _field("Message header (none)", 0),
    "t": _field("Message type indicator", 4),
    "p": _field("Bitmap, primary", 8, enc="b"),
    "1": _field("Bitmap, secondary", 8, enc="b"),
    "2": _field("Primary account number", 19, 2),
    "3": _field("Processing code", 6),
    "4": _field("Amount, transaction", 12),
    "7": _field("Transmission date and time", 10),
    "11": _field("System trace audit number", 6),
    "12": _field("Time, local transaction", 6),
    "13": _field("Date, local transaction", 4),
    "14": _field("Date, expiration", 4),
    "15": _field("Date, settlement", 4),
    "18": _field("Merchant type", 4),
    "22": _field("Point of service entry mode", 3),
    "23": _field("Card sequence number", 3),
    "25": _field("Point of service condition code", 2),
    "26": _field("Point of service PIN capture code", 2),
    "32": _field("Acquiring institution identification code", 11, 2),
    "33": _field("Forwarding institution identification code", 11, 2),
    "35": _field("Track 2 data", 37, 2),
    "37": _field("Retrieval reference number", 12),
    "38": _field("Authorisation identification response", 6),
    "39": _field("Response code", 2),
    "41": _field("Card acceptor terminal identification", 8),
    "42": _field("Card acceptor identification code", 15),
    "43": _field("Card acceptor name/location", 40, enc="gbk"),
    "44": _field("Additional response data", 25, 2),
    "48": _field("Additional data, private", 512, 3),
    "49": _field("Currency code, transaction", 3),
    "52": _field("PIN data", 8, enc="b"),
    "53": _field("Security related control information", 16),
    "54": _field("Additional amounts", 40, 3),
    "55": _field("ICC data (EMV TLV)", 255, 3, enc="b"),
    "60": _field("Reserved, private", 100, 3, enc="latin-1"),
    "61": _field("Cardholder authentication information", 200, 3, enc="latin-1"),
    "63": _field("Financial network data", 512, 3, enc="latin-1"),
    "100": _field("Receiving institution identification code", 11, 2),
    "121": _field("National switch reserved", 100, 3, enc="latin-1"),
    "123": _field("Issuer reserved", 999, 3, enc="latin-1"),
    "128": _field("Message authentication code", 8),
}

AUTHORISATION_REQUEST = "0100"
AUTHORISATION_RESPONSE = "0110"
FINANCIAL_REQUEST = "0200"  # an online payment-code authorisation (host_sim/backend/online.py)
FINANCIAL_RESPONSE = "0210"
REVERSAL_REQUEST = "0400"  # undoes an approved 0200 the terminal never took (late, or declined there)
REVERSAL_RESPONSE = "0410"

# DE 39 as ISO 8583:1987 defines it; what this host answers and why (ISO8583.md "Response codes").
APPROVED = "00"
DO_NOT_HONOUR = "05"  # the issuer refuses the cryptogram (failed, missing, or the card's AAC)
INVALID_TRANSACTION = "12"
INVALID_AMOUNT = "13"
INVALID_CARD_NUMBER = "14"
NO_SUCH_ISSUER = "15"
FORMAT_ERROR = "30"
INSUFFICIENT_FUNDS = "51"
EXPIRED_CARD = "54"
EXCEEDS_AMOUNT_LIMIT = "61"
RESTRICTED_CARD = "62"
ISSUER_UNAVAILABLE = "91"
SYSTEM_MALFUNCTION = "96"

RESPONSE_TEXT = {
    APPROVED: "approved", DO_NOT_HONOUR: "do not honour", INVALID_TRANSACTION: "invalid transaction",
    INVALID_AMOUNT: "invalid amount", INVALID_CARD_NUMBER: "invalid card number", NO_SUCH_ISSUER: "no such issuer",
    FORMAT_ERROR: "format error", INSUFFICIENT_FUNDS: "insufficient funds", EXPIRED_CARD: "expired card",
    EXCEEDS_AMOUNT_LIMIT: "over limit", RESTRICTED_CARD: "card blocked by issuer",
    ISSUER_UNAVAILABLE: "issuer unavailable", SYSTEM_MALFUNCTION: "system malfunction",
}
# Answers that are not the issuer's word on the card: the transaction stays pending and is asked again.
TRY_AGAIN = (FORMAT_ERROR, ISSUER_UNAVAILABLE, SYSTEM_MALFUNCTION)


class MessageError(ValueError):
    """A message this side cannot use; str(e) says why (never card data)."""


def encode(fields):
    """The message bytes (without the length header) of {field: str} (DE 55 as hex)."""
    try:
        raw, _ = iso8583.encode(dict(fields), SPEC)
    except (iso8583.EncodeError, UnicodeError, ValueError, TypeError) as e:
        raise MessageError("cannot encode: %s" % e) from None
    return bytes(raw)


def decode(data):
    """{field: str} of one message (without the length header); MessageError if malformed."""
    if len(data) > MAX_MESSAGE:
        raise MessageError("message of %d bytes exceeds %d" % (len(data), MAX_MESSAGE))
    try:
        fields, _ = iso8583.decode(bytes(data), SPEC)
    except (iso8583.DecodeError, UnicodeError, ValueError, KeyError, IndexError, TypeError) as e:
        raise MessageError("malformed message: %s" % e) from None
    if not fields["t"].isdigit():
        raise MessageError("message type %r is not 4 digits" % fields["t"])
    return fields


def framed(message):
    """`message` behind its 2-byte big-endian length."""
    if not 0 < len(message) <= MAX_MESSAGE:
        raise MessageError("message of %d bytes cannot be framed" % len(message))
    return len(message).to_bytes(HEADER_SIZE, "big") + message


def frame_length(header):
    """The message length a 2-byte header announces; MessageError if no message can be that long."""
    n = int.from_bytes(header, "big")
    if not 0 < n <= MAX_MESSAGE:
        raise MessageError("length header announces %d bytes (1..%d allowed)" % (n, MAX_MESSAGE))
    return n


def icc_data(tags):
    """DE 55 (hex) from {tag: bytes}, in the order given."""
    return b"".join(tlv.encode(tag, bytes(value)) for tag, value in tags.items()).hex().upper()


def icc_tags(de55):
    """{tag: bytes} of DE 55; MessageError if it is not flat BER-TLV with each tag once."""
    try:
        objects = tlv.decode(bytes.fromhex(de55), unique=True)
    except (tlv.TlvError, ValueError) as e:
        raise MessageError("DE 55 is not EMV TLV: %s" % e) from None
    return {tag: bytes(value) for tag, value, _ in objects}


def private_data(elements):
    """DE 48 from {two-letter id: str}: id, 3-digit length, value, one after the other."""
    out = []
    for key, value in elements.items():
        if len(key) != 2 or len(value) > 999:
            raise MessageError("DE 48 element %r cannot be encoded" % key)
        out.append("%s%03d%s" % (key, len(value), value))
    return "".join(out)


def private_elements(de48):
    """{id: str} of DE 48 (private_data); MessageError if an element runs past the field."""
    out = {}
    i = 0
    while i < len(de48):
        head = de48[i:i + 5]
        if len(head) < 5 or not head[2:].isdigit():
            raise MessageError("DE 48 element header %r at %d is malformed" % (head, i))
        n = int(head[2:])
        if i + 5 + n > len(de48):
            raise MessageError("DE 48 element %r runs past the field" % head[:2])
        out[head[:2]] = de48[i + 5:i + 5 + n]
        i += 5 + n
    return out
