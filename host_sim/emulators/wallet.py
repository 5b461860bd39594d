"""A phone wallet showing EMV QRCPS payment codes (云闪付 / bank app "付款码"), as real wallets do.

Each payment gets a fresh code: the application transaction counter goes up by one and a new
unpredictable number is drawn, and the application cryptogram (an ARQC, 9F27 = 80) is computed with
the card's keys from the test issuer master key of its profile (host_sim/issuers.py), over the data a
code is made with before any amount is known.  The issuer behind the acquirer host computes the same
value, so it approves a genuine code and declines a forged or altered one.

A forged code (`forge=True`) keeps every format rule and passes every check a terminal can make
offline (Luhn, expiry, ARQC, counter) but carries a cryptogram the card's keys never made: the
terminal accepts it, the issuer declines it when the record is authorised.
"""

import os

from host_sim import issuers
from protocol import cpm

UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
# profile: (PAN, PAN sequence number, AID) of the test account a wallet of that profile holds.
ACCOUNTS = {
    "unionpay-hce": ("6250947000000014", "01", UNIONPAY_DEBIT),
    "unionpay-card": ("6228480000000000018", "00", UNIONPAY_DEBIT),
    "visa": ("4761739001010010", "01", bytes.fromhex("A0000000031010")),
    "mastercard": ("5413330089010434", "00", bytes.fromhex("A0000000041010")),
}
DEFAULT_PROFILE = "unionpay-hce"
AIP = b"\x00\x00"  # no offline data authentication: the code is authorised online
IAD = bytes.fromhex("07010103A00000")  # UnionPay IAD layout: length, DKI, CVN, CVR (03A00000)


def code(profile=DEFAULT_PROFILE, pan=None, expiry="3012", atc=1, forge=False, cryptogram=None, un=None):
    """One payment code (base64 text) of a `profile` account; `pan` overrides the profile's account,
    `cryptogram` (8 bytes) replaces the computed one, `forge` puts a wrong one in its place."""
    if profile not in ACCOUNTS:
        raise ValueError("unknown profile %r (one of %s)" % (profile, ", ".join(sorted(ACCOUNTS))))
    default_pan, psn, aid = ACCOUNTS[profile]
    pan = pan or default_pan
    un = os.urandom(4) if un is None else un
    tags = {0x9F36: atc.to_bytes(2, "big"), 0x9F37: un, 0x82: AIP, 0x9F10: IAD}
    if cryptogram is None:
        cryptogram = issuers.application_cryptogram(profile, pan, psn, tags)
        if forge:
            cryptogram = _other(cryptogram)
    return cpm.encode(pan, expiry=expiry, atc=atc, cryptogram=cryptogram, aid=aid, unpredictable=un, iad=IAD,
                      aip=AIP, psn=bytes.fromhex(psn))


def _other(cryptogram):
    while True:
        forged = os.urandom(8)
        if forged != cryptogram:
            return forged


class Wallet:
    """One phone: every `show()` is the next payment's code, its counter one higher."""

    def __init__(self, profile=DEFAULT_PROFILE, pan=None, expiry="3012", atc=0):
        self.profile = profile
        self.pan = pan
        self.expiry = expiry
        self.atc = atc

    def show(self, forge=False):
        self.atc += 1
        return code(self.profile, self.pan, self.expiry, self.atc, forge=forge)
