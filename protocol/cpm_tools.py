"""What tools and tests need of EMV QRCPS payment codes and a terminal never runs: a flat summary of a
decoded code, and a code made from its parts.  Kept apart from protocol/cpm.py so the tap path does
not carry them in the terminal's heap."""

import binascii

from protocol import cpm, tlv


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
        if tag == cpm.T_APP and children is not None:
            aid = tlv.find(children, cpm.T_AID)
            label = tlv.find(children, cpm.T_LABEL)
            apps.append({"aid": None if aid is None else binascii.hexlify(aid).decode().upper(),
                         "label": None if label is None else _text(label)})
    tags = cpm.payment_data(objects)
    atc = tags.get(cpm.T_ATC)
    c = cpm.cid(tags)
    return {
        "applications": apps,
        "account_source": "5A" if cpm.T_PAN in tags else ("57" if cpm.T_TRACK2 in tags else None),
        "expiry": cpm.expiry_digits(tags),
        "atc": None if atc is None or len(atc) != 2 else (atc[0] << 8) | atc[1],
        "cid": None if c is None else "%02X" % c,
        "deferred": c is not None and c & cpm.CID_TYPE_MASK == cpm.CID_ARQC,
    }


def encode(pan, expiry="3012", atc=1, cryptogram=b"\x00" * 8, aid=b"\xa0\x00\x00\x03\x33\x01\x01\x01",
           label=b"UnionPay", unpredictable=b"\x00\x00\x00\x00", cid=b"\x80", iad=b"\x06\x01\x0a\x03\xa0\x00\x00",
           aip=None, psn=None):
    """A CPM payload for tests and the simulator: one UnionPay application, track-2 equivalent data,
    the cryptogram data (and AIP 82, PAN sequence number 5F34 when given) in a 63 inside 62."""
    t2 = pan + "D" + expiry + "2200000000000"
    if len(t2) % 2:
        t2 += "F"
    track2 = binascii.unhexlify(t2)
    app = tlv.encode(cpm.T_AID, aid) + tlv.encode(0x50, label)
    transparent = (tlv.encode(cpm.T_IAD, iad) + tlv.encode(cpm.T_CRYPTOGRAM, cryptogram)
                   + tlv.encode(cpm.T_CID, cid) + tlv.encode(cpm.T_ATC, bytes([atc >> 8 & 0xFF, atc & 0xFF]))
                   + tlv.encode(cpm.T_UN, unpredictable))
    if aip is not None:
        transparent += tlv.encode(cpm.T_AIP, aip)
    common = tlv.encode(cpm.T_TRACK2, track2)
    if psn is not None:
        common += tlv.encode(cpm.T_PSN, psn)
    common += tlv.encode(0x63, transparent)
    raw = tlv.encode(cpm.T_FORMAT, cpm.FORMAT) + tlv.encode(cpm.T_APP, app) + tlv.encode(cpm.T_COMMON, common)
    return binascii.b2a_base64(raw).strip().decode()
