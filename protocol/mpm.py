"""EMVCo merchant-presented mode (MPM) QR payloads: the static or dynamic code a merchant shows.

The text is a run of ID-length-value fields: a 2-digit ID, a 2-digit length (in characters) and the
value.  Merchant account templates (IDs 26-51), additional data (62), the language template (64) and
the unreserved templates (80-99) hold nested fields of the same shape.  ID 00 (payload format "01")
comes first; ID 63, length 04, comes last and carries CRC-16/CCITT-FALSE over every byte before its
value, "6304" included, as four upper-case hex digits.  A structurally sound payload with a wrong CRC
decodes, with crc_ok False, so a tool can say what is wrong.
"""

from protocol import crc

MAX_TEXT = 512
MAX_DEPTH = 2  # a template's fields are primitive

ID_FORMAT = "00"
ID_INITIATION = "01"
ID_MCC = "52"
ID_CURRENCY = "53"
ID_AMOUNT = "54"
ID_COUNTRY = "58"
ID_NAME = "59"
ID_CITY = "60"
ID_POSTAL = "61"
ID_ADDITIONAL = "62"
ID_CRC = "63"
ID_LANGUAGE = "64"


class MpmError(ValueError):
    pass


def is_template(field_id):
    n = int(field_id)
    return 26 <= n <= 51 or n == 62 or n == 64 or 80 <= n <= 99


def _digits2(text, i):
    a = text[i : i + 2]
    if len(a) != 2 or not ("0" <= a[0] <= "9" and "0" <= a[1] <= "9"):
        return None
    return a


def parse(text, nested=True):
    """The fields of `text` as (id, value, children) tuples; children for templates when `nested`."""
    return _parse(text, 0, len(text), 0 if nested else MAX_DEPTH - 1)


def _parse(text, start, end, depth):
    out = []
    i = start
    while i < end:
        field_id = _digits2(text, i)
        if field_id is None or i + 2 > end:
            raise MpmError("bad field ID at character %d" % i)
        length = _digits2(text, i + 2)
        if length is None or i + 4 > end:
            raise MpmError("bad length of field %s at character %d" % (field_id, i + 2))
        n = int(length)
        if i + 4 + n > end:
            raise MpmError("field %s at character %d runs past its container (%d > %d characters)"
                           % (field_id, i, n, end - i - 4))
        value = text[i + 4 : i + 4 + n]
        children = None
        if depth + 1 < MAX_DEPTH and is_template(field_id):
            children = _parse(text, i + 4, i + 4 + n, depth + 1)
        for seen in out:
            if seen[0] == field_id:
                raise MpmError("field %s repeated at character %d" % (field_id, i))
        out.append((field_id, value, children))
        i += 4 + n
    return out


def crc_text(data):
    """The CRC field value for the bytes `data` (everything up to and including "6304")."""
    return "%04X" % crc.crc16_ccitt_false(data)


def decode(text):
    """(fields, crc_ok) for an MPM payload; raises MpmError when its structure is not MPM at all."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise MpmError("payload is not UTF-8 text")
    if len(text) > MAX_TEXT:
        raise MpmError("payload longer than %d characters" % MAX_TEXT)
    objects = parse(text)
    if not objects or objects[0][0] != ID_FORMAT or objects[0][1] != "01":
        raise MpmError("payload format indicator (00) is not 01 or not first")
    last = objects[len(objects) - 1]
    if last[0] != ID_CRC or len(last[1]) != 4:
        raise MpmError("CRC field 63 of length 04 is not last")
    try:
        raw = text.encode()
    except UnicodeError:  # CPython: text from bytes that were not UTF-8 (argv's surrogate escapes)
        raise MpmError("payload is not UTF-8 text")
    crc_ok = crc_text(raw[: len(raw) - 4]) == last[1].upper()
    return objects, crc_ok


def field(objects, field_id, sub_id=None):
    for fid, value, children in objects:
        if fid == field_id:
            if sub_id is None:
                return value
            for sid, sval, _ in children or ():
                if sid == sub_id:
                    return sval
    return None


def fields(objects):
    """A flat summary for tools: merchant name, city, country, currency, amount, category, static."""
    accounts = []
    for fid, value, children in objects:
        if 2 <= int(fid) <= 51:  # 02-25 primitive (card networks: 15/16 UnionPay), 26-51 templates
            accounts.append({"id": fid, "gui": field(objects, fid, "00") if children else None,
                             "value": value})
    initiation = field(objects, ID_INITIATION)
    return {
        "merchant_name": field(objects, ID_NAME),
        "merchant_city": field(objects, ID_CITY),
        "country": field(objects, ID_COUNTRY),
        "currency": field(objects, ID_CURRENCY),
        "amount": field(objects, ID_AMOUNT),
        "mcc": field(objects, ID_MCC),
        "static": initiation == "11" if initiation is not None else None,
        "merchant_accounts": accounts,
    }


def tlv(field_id, value):
    if len(value) > 99:
        raise MpmError("field %s longer than 99 characters" % field_id)
    return "%s%02d%s" % (field_id, len(value), value)


def encode(pairs):
    """A payload from (id, value) pairs, with 00 = "01" first and the CRC appended; a value that is a
    list of pairs becomes a template."""
    body = tlv(ID_FORMAT, "01")
    for field_id, value in pairs:
        if isinstance(value, list):
            value = "".join(tlv(sid, sval) for sid, sval in value)
        body += tlv(field_id, value)
    body += ID_CRC + "04"
    return body + crc_text(body.encode())
