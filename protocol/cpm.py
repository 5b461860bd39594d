"""EMV QRCPS consumer-presented mode (CPM) payment codes, as UnionPay and bank wallets show them.

The QR text is base64 of BER-TLV (EMV QRCPS, data objects of the consumer-presented mode):

    85  payload format indicator "CPV01", first
    61  application template, one or more, each with its ADF name 4F; a wallet lists them in its
        order of preference and the terminal pays with the first
    62  common data template, optional, at most one
    57 / 5A  track-2 equivalent data or application PAN, in a 61 or in 62
    63  application-specific transparent template (in 61 or 62), 64 common data transparent template
        (in 62): the cryptogram data deferred authorisation needs (9F26, 9F27, 9F10, 9F36, 9F37, 82)

Proprietary and unknown tags are kept, not rejected; a tag repeated inside one template is refused (EMV
Book 3 annex B), except application templates 61.  `decode` checks the structure only, so a transit
ticket in a CPM wrapper decodes too; `check` says whether a payment code is one a terminal may accept
offline: a Luhn-valid account, not expired, an 8-byte application cryptogram 9F26 that is an ARQC
(9F27 = 80: the issuer authorises it later) and a transaction counter 9F36.
"""

import binascii

from protocol import dates, luhn, record, tlv

FORMAT = b"CPV01"
MAX_TEXT = 512

T_FORMAT = 0x85
T_APP = 0x61
T_COMMON = 0x62
T_AID = 0x4F
T_PAN = 0x5A
T_TRACK2 = 0x57
T_EXPIRY = 0x5F24
T_PSN = 0x5F34
T_ATC = 0x9F36
T_CRYPTOGRAM = 0x9F26
T_CID = 0x9F27
T_IAD = 0x9F10
T_UN = 0x9F37
T_AIP = 0x82
T_LABEL = 0x50
T_APP_DATA = 0x63  # application-specific transparent template, in 61 or 62
T_COMMON_DATA = 0x64  # common data transparent template, in 62

CID_TYPE_MASK = 0xC0
CID_AAC = 0x00
CID_TC = 0x40
CID_ARQC = 0x80

MAX_IAD = 32  # issuer application data 9F10 is at most 32 bytes (EMV Book 3 annex A)

# What a record keeps of an accepted code (record.EXT_EMV_DATA in clear, EXT_EMV_SEALED sealed).
CLEAR_TAGS = (T_CID, T_ATC, T_UN, T_AIP, T_IAD, T_PSN)
SEALED_TAGS = (T_PAN, T_TRACK2, T_EXPIRY, T_CRYPTOGRAM)


class CpmError(ValueError):
    pass


_PREFIX = "hQVDUFYwM"  # the 9 base64 characters fixed by the header 85 05 "CPV01"
_PREFIX_BYTES = b"hQVDUFYwM"


def is_cpm(text):
    """Cheap test on the raw scanner line (bytes or str) before decoding it."""
    return text[:9] == (_PREFIX if isinstance(text, str) else _PREFIX_BYTES)


def _constructed(tag, children):
    if children is None:
        raise CpmError("template %X is not constructed" % tag)


def _check_template(tag, children):
    _constructed(tag, children)
    for inner, _, grandchildren in children:
        if inner == T_APP_DATA or inner == T_COMMON_DATA:
            _constructed(inner, grandchildren)
    if tag == T_APP:
        for inner, value, grandchildren in children:
            if inner == T_AID:
                if grandchildren is not None or not 5 <= len(value) <= 16:
                    raise CpmError("malformed ADF name (4F)")
                return
        raise CpmError("application template (61) without ADF name (4F)")


def decode(text):
    """The payload's TLV objects; raises CpmError for anything that is not a well-formed CPM payload."""
    if len(text) > MAX_TEXT:
        raise CpmError("payload longer than %d characters" % MAX_TEXT)
    try:
        raw = binascii.a2b_base64(text)
    except (ValueError, TypeError):
        raise CpmError("payload is not base64")
    try:
        objects = tlv.decode(raw, unique=True, repeatable=(T_APP,))
    except tlv.TlvError as e:
        raise CpmError("bad TLV: %s" % e)
    if not objects or objects[0][0] != T_FORMAT or objects[0][1] != FORMAT:
        raise CpmError("payload format indicator is not CPV01")
    apps = 0
    for tag, _, children in objects[1:]:
        if tag == T_FORMAT:
            raise CpmError("payload format indicator repeated")
        if tag == T_APP or tag == T_COMMON:
            _check_template(tag, children)
            if tag == T_APP:
                apps += 1
    if not apps:
        raise CpmError("no application template (61)")
    return objects


def _collect(objects, out):
    for tag, value, children in objects:
        if children is None:
            if tag not in out:
                out[tag] = value
        elif tag == T_APP_DATA or tag == T_COMMON_DATA:
            _collect(children, out)


def payment_data(objects):
    """{tag: value} of the primitive data of the payment: the first application template (with its
    63) first, then the common data template (with its 63 and 64)."""
    out = {}
    app = common = None
    for tag, _, children in objects:
        if tag == T_APP and app is None:
            app = children
        elif tag == T_COMMON:
            common = children
    _collect(app or (), out)
    _collect(common or (), out)
    return out


def _tags(objects_or_tags):
    return objects_or_tags if isinstance(objects_or_tags, dict) else payment_data(objects_or_tags)


def cid(objects):
    """The cryptogram information data byte (9F27), or None when the payload carries none."""
    value = _tags(objects).get(T_CID)
    if value is None:
        return None
    if len(value) != 1:
        raise CpmError("malformed cryptogram information data (9F27)")
    return value[0]


def deferred(objects):
    """True when the cryptogram is an ARQC (9F27 = 80): the host authorises later, not the terminal."""
    c = cid(objects)
    return c is not None and c & CID_TYPE_MASK == CID_ARQC


def expiry_digits(tags):
    """The expiry as digits: YYMMDD from 5F24, else YYMM from the track-2 equivalent data; None."""
    value = tags.get(T_EXPIRY)
    if value is not None:  # n6: exactly three bytes, else no date at all
        return binascii.hexlify(value).decode() if len(value) == 3 else ""
    track2 = tags.get(T_TRACK2)
    text = "" if track2 is None else binascii.hexlify(track2).decode().upper()
    sep = text.find("D")
    if sep >= 0 and len(text) >= sep + 5 and text[sep + 1 : sep + 5].isdigit():
        return text[sep + 1 : sep + 5]
    return None


def fields(objects):
    """A flat summary for tools (protocol/cpm_tools.py fields)."""
    from protocol import cpm_tools

    return cpm_tools.fields(objects)


def _digits(bcd):
    out = []
    for b in bcd:
        for nib in (b >> 4, b & 15):
            if nib > 9:
                return "".join(out), nib
            out.append("0123456789"[nib])
    return "".join(out), None


def account_number(objects):
    """The card number or wallet token (digits) from 5A, else from track-2 equivalent data (57)."""
    tags = _tags(objects)
    pan = tags.get(T_PAN)
    if pan is not None:
        digits, stop = _digits(pan)
        if stop not in (None, 0xF) or not 12 <= len(digits) <= 19:
            raise CpmError("malformed PAN (5A)")
        return digits
    track2 = tags.get(T_TRACK2)
    if track2 is not None:
        digits, stop = _digits(track2)
        if stop != 0xD or not 12 <= len(digits) <= 19:
            raise CpmError("malformed track-2 equivalent data (57)")
        return digits
    raise CpmError("no PAN (5A) or track-2 data (57)")


def check(tags, now=None):
    """record.REASON_NONE when the payment code `tags` (payment_data) may be accepted offline, else the
    reason to decline it.  `now`: the board clock (seconds since 1970), None when the board has no valid
    time; then expiry is left to the issuer, which checks it when it authorises the record."""
    if T_PAN not in tags and T_TRACK2 not in tags:
        return record.REASON_CPM_NO_ACCOUNT
    try:
        pan = account_number(tags)
    except CpmError:
        return record.REASON_CPM_BAD_PAN
    if not luhn.valid(pan):
        return record.REASON_CPM_BAD_PAN
    digits = expiry_digits(tags)
    expiry = None if digits is None else dates.expiry(digits)
    if expiry is None:
        return record.REASON_CPM_NO_EXPIRY
    if now is not None and dates.expired(expiry, now):
        return record.REASON_CPM_EXPIRED
    cryptogram = tags.get(T_CRYPTOGRAM)
    if cryptogram is None or len(cryptogram) != 8:
        return record.REASON_CPM_NO_CRYPTOGRAM
    c = tags.get(T_CID)
    if c is None or len(c) != 1:
        return record.REASON_CPM_NO_CID
    kind = c[0] & CID_TYPE_MASK
    if kind == CID_AAC:
        return record.REASON_CPM_AAC
    if kind != CID_ARQC:  # a TC (or RFU): deferred authorisation needs an online cryptogram
        return record.REASON_CPM_NOT_ARQC
    atc = tags.get(T_ATC)
    if atc is None or len(atc) != 2:
        return record.REASON_CPM_NO_ATC
    iad = tags.get(T_IAD)
    if iad is not None and len(iad) > MAX_IAD:
        return record.REASON_MALFORMED
    return record.REASON_NONE


def tlv_of(tags, which):
    """The BER-TLV of the tags in `which` that `tags` has, in that order."""
    out = b""
    for tag in which:
        value = tags.get(tag)
        if value is not None:
            out += tlv.encode(tag, value)
    return out


def encode(pan, **kw):
    """A CPM payload for tests and the simulator (protocol/cpm_tools.py encode)."""
    from protocol import cpm_tools

    return cpm_tools.encode(pan, **kw)
