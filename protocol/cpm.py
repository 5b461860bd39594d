"""EMVCo consumer-presented mode (CPM) QR payloads, as UnionPay and bank wallets show them.

The QR text is base64 of BER-TLV: 85 "CPV01" (payload format indicator), application templates 61,
the common data template 62 (PAN 5A or track-2 equivalent 57, expiry, name), and inside it the
application-specific transparent template 63 / common data transparent template 64 with the
cryptogram data deferred authorisation needs.  Unknown tags are kept, not rejected; a tag repeated
inside one template is refused (EMV Book 3 annex B), except application templates 61, of which a wallet
may show several.  A cryptogram information data 9F27 of 0x80 (an ARQC) means the terminal cannot
approve alone: authorisation is deferred to the host.
"""

import binascii

from protocol import tlv

FORMAT = b"CPV01"
MAX_TEXT = 512

T_FORMAT = 0x85
T_APP = 0x61
T_COMMON = 0x62
T_AID = 0x4F
T_PAN = 0x5A
T_TRACK2 = 0x57
T_EXPIRY = 0x5F24
T_ATC = 0x9F36
T_CRYPTOGRAM = 0x9F26
T_CID = 0x9F27
T_IAD = 0x9F10
T_UN = 0x9F37
T_LABEL = 0x50
T_APP_DATA = 0x63  # application-specific transparent template, inside 62
T_COMMON_DATA = 0x64  # common data transparent template, inside 62

CID_TYPE_MASK = 0xC0
CID_AAC = 0x00
CID_TC = 0x40
CID_ARQC = 0x80


class CpmError(ValueError):
    pass


_PREFIX = "hQVDUFYwM"  # the 9 base64 characters fixed by the header 85 05 "CPV01"
_PREFIX_BYTES = b"hQVDUFYwM"


def is_cpm(text):
    """Cheap test on the raw scanner line (bytes or str) before decoding it."""
    return text[:9] == (_PREFIX if isinstance(text, str) else _PREFIX_BYTES)


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
    common = None
    for tag, _, children in objects[1:]:
        if tag == T_FORMAT:
            raise CpmError("payload format indicator repeated")
        if tag == T_APP or tag == T_COMMON:
            if children is None:
                raise CpmError("template %X is not constructed" % tag)
            if tag == T_COMMON:
                common = children
    if common is None:
        raise CpmError("no common data template (62)")
    for tag, _, children in common:
        if (tag == T_APP_DATA or tag == T_COMMON_DATA) and children is None:
            raise CpmError("template %X is not constructed" % tag)
    return objects


def cid(objects):
    """The cryptogram information data byte (9F27), or None when the payload carries none."""
    value = tlv.find(objects, T_CID)
    if value is None:
        return None
    if len(value) != 1:
        raise CpmError("malformed cryptogram information data (9F27)")
    return value[0]


def deferred(objects):
    """True when the cryptogram is an ARQC (9F27 = 80): the host authorises later, not the terminal."""
    c = cid(objects)
    return c is not None and c & CID_TYPE_MASK == CID_ARQC


def _text(value):
    try:
        return value.decode()
    except UnicodeError:
        return binascii.hexlify(value).decode().upper()


def fields(objects):
    """A flat summary for tools: applications, account source, expiry, counter, cryptogram type.

    The account itself is not included; callers that may show it mask it themselves."""
    apps = []
    for tag, _, children in objects:
        if tag == T_APP and children is not None:
            aid = tlv.find(children, T_AID)
            label = tlv.find(children, T_LABEL)
            apps.append({"aid": None if aid is None else binascii.hexlify(aid).decode().upper(),
                         "label": None if label is None else _text(label)})
    atc = tlv.find(objects, T_ATC)
    c = cid(objects)
    expiry = tlv.find(objects, T_EXPIRY)
    if expiry is not None:
        expiry = binascii.hexlify(expiry).decode()
    else:  # track-2 equivalent data: YYMM right after the separator D
        track2 = tlv.find(objects, T_TRACK2)
        text = "" if track2 is None else binascii.hexlify(track2).decode().upper()
        sep = text.find("D")
        if sep >= 0 and len(text) >= sep + 5 and text[sep + 1 : sep + 5].isdigit():
            expiry = text[sep + 1 : sep + 5]
    return {
        "applications": apps,
        "account_source": "5A" if tlv.find(objects, T_PAN) is not None else
        ("57" if tlv.find(objects, T_TRACK2) is not None else None),
        "expiry": expiry,
        "atc": None if atc is None or len(atc) != 2 else (atc[0] << 8) | atc[1],
        "cid": None if c is None else "%02X" % c,
        "deferred": deferred(objects),
    }


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
    pan = tlv.find(objects, T_PAN)
    if pan is not None:
        digits, stop = _digits(pan)
        if stop not in (None, 0xF) or not 12 <= len(digits) <= 19:
            raise CpmError("malformed PAN (5A)")
        return digits
    track2 = tlv.find(objects, T_TRACK2)
    if track2 is not None:
        digits, stop = _digits(track2)
        if stop != 0xD or not 12 <= len(digits) <= 19:
            raise CpmError("malformed track-2 equivalent data (57)")
        return digits
    raise CpmError("no PAN (5A) or track-2 data (57)")


def encode(pan, expiry="3012", atc=1, cryptogram=b"\x00" * 8, aid=b"\xa0\x00\x00\x03\x33\x01\x01\x01",
           label=b"UnionPay", unpredictable=b"\x00\x00\x00\x00", cid=b"\x80", iad=b"\x06\x01\x0a\x03\xa0\x00\x00"):
    """A CPM payload for tests and the simulator: one UnionPay application, track-2 equivalent data."""
    t2 = pan + "D" + expiry + "2200000000000"
    if len(t2) % 2:
        t2 += "F"
    track2 = binascii.unhexlify(t2)
    app = tlv.encode(T_AID, aid) + tlv.encode(0x50, label)
    transparent = (tlv.encode(T_IAD, iad) + tlv.encode(T_CRYPTOGRAM, cryptogram) + tlv.encode(T_CID, cid)
                   + tlv.encode(T_ATC, bytes([atc >> 8 & 0xFF, atc & 0xFF])) + tlv.encode(T_UN, unpredictable))
    common = tlv.encode(T_TRACK2, track2) + tlv.encode(0x63, transparent)
    raw = tlv.encode(T_FORMAT, FORMAT) + tlv.encode(T_APP, app) + tlv.encode(T_COMMON, common)
    return binascii.b2a_base64(raw).strip().decode()
