"""The issuer simulation behind the acquirer host: it checks the card in an authorisation request.

A deferred authorisation carries what the card computed at the tap (DE 55: 9F26 over the amount,
unpredictable number, ATC and the rest of host_sim/issuers.AC_DATA).  The issuer of the PAN (found by
BIN, host_sim/issuers.PROFILE_BINS) derives the card's key from its issuer master key and computes the
cryptogram again; a forged code or an altered amount, ATC, unpredictable number or PAN gives another
value and the request is declined.  Response codes: host_sim/backend/ISO8583.md "Response codes".
"""

import time

from host_sim import issuers
from host_sim.backend import iso8583

ARQC, TC, AAC = 0x80, 0x40, 0x00


def luhn_ok(pan):
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def account_number(fields):
    """The PAN of a request: DE 2, else the digits of DE 35 before its separator; None if neither."""
    if fields.get("2"):
        return fields["2"]
    track2 = fields.get("35", "")
    for sep in "=D":
        if sep in track2:
            return track2.split(sep, 1)[0]
    return None


class Issuer:
    """Every test issuer of host_sim/issuers.py, answering for its cards."""

    def check(self, fields):
        """(response code, reason) for the card data of a decoded 0100; None when it carries no account
        number (DE 2 or 35), so there is no card to check."""
        pan = account_number(fields)
        if pan is None:
            return None
        if not pan.isdigit() or not 12 <= len(pan) <= 19 or not luhn_ok(pan):
            return iso8583.INVALID_CARD_NUMBER, "invalid card number"
        try:
            tags = iso8583.icc_tags(fields["55"]) if "55" in fields else {}
        except iso8583.MessageError as e:
            return iso8583.FORMAT_ERROR, str(e)[:25]
        aid = tags.get(0x84) or tags.get(0x4F)
        profile = issuers.profile_for(pan, aid)
        if profile is None:
            return iso8583.NO_SUCH_ISSUER, "no such issuer"
        if 0x9F26 not in tags or 0x9F36 not in tags:
            return iso8583.DO_NOT_HONOUR, "no cryptogram"
        cid = tags.get(0x9F27)
        if cid and cid[0] & 0xC0 == AAC:
            return iso8583.DO_NOT_HONOUR, "card declined (AAC)"
        psn = fields.get("23", "")[-2:] or (tags[0x5F34].hex()[-2:] if 0x5F34 in tags else "00")
        if not issuers.verify_cryptogram(profile, pan, psn, tags):
            return iso8583.DO_NOT_HONOUR, "cryptogram failed"
        signed = tags.get(0x9F02, b"").hex()
        if signed.isdigit() and int(signed) and int(fields.get("4", "0") or 0) > int(signed):
            # a transit charge may be below what the card signed (a transfer discount, a daily cap:
            # SPEC.md EXT_CARD_AMOUNT), never above it
            return iso8583.INVALID_AMOUNT, "amount above the card's"
        # the card's date of the transaction (9A); a CPM code has none: then today, as the issuer authorises
        expiry, date = fields.get("14", ""), tags.get(0x9A, b"").hex() or time.strftime("%y%m%d", time.gmtime())
        if expiry.isdigit() and date.isdigit() and len(date) == 6 and expiry < date[:4]:
            return iso8583.EXPIRED_CARD, "expired card"
        return iso8583.APPROVED, None
