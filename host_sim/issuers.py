"""Test issuers: master keys per card profile and the application cryptogram of EMV Book 2 annex A.

Every emulated card and phone (host_sim/emulators/emv_card.py), every `qr make cpm` code and the issuer
simulation behind the acquirer host use this one definition, so a cryptogram a card computed verifies
at the issuer exactly when nothing in the transaction was altered.  Keys are test keys, derived from
the profile name: never use them for anything real.

Derivation (pyemv): ICC master key from the issuer master key with EMV option A (PAN, PAN sequence
number), session key with the EMV common session key derivation (ATC), cryptogram = ISO 9797-1 MAC
algorithm 3 over AC_DATA (padding method 2), 8 bytes.
"""

import hashlib
import hmac
import warnings

from pyemv import ac, kd

# The data the cryptogram covers, in this order (EMV Book 2 annex A1.2 "recommended minimum set"):
# amount, other amount, terminal country, TVR, currency, date, type, unpredictable number, AIP, ATC,
# and the card verification results from the issuer application data.  A tag the transaction lacks
# counts as zeros of its length (a CPM code is generated before any amount is known: 9F02 = 0).
AC_DATA = ((0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1), (0x9F37, 4),
           (0x82, 2), (0x9F36, 2))


def issuer_master_key(profile):
    """The 16-byte double-length DES issuer master key (AC) of a test profile."""
    return hashlib.sha256(b"zhifu test issuer master key AC " + profile.encode()).digest()[:16]


def ac_input(tags):
    """The bytes the cryptogram covers, from {tag: bytes} (missing tags as zeros)."""
    out = bytearray()
    for tag, size in AC_DATA:
        value = bytes(tags.get(tag, b""))[:size]
        out += bytes(size - len(value)) + value if tag in (0x9F02, 0x9F03) else value + bytes(size - len(value))
    iad = bytes(tags.get(0x9F10, b""))
    out += iad[3:7] if len(iad) >= 7 else bytes(4)  # CVR (Visa/UnionPay IAD layout: byte 3..6)
    return bytes(out)


def application_cryptogram(profile, pan, psn, tags):
    """9F26 of a card of `profile` with `pan` (digits) and `psn` (two digits) over `tags` (incl. 9F36)."""
    with warnings.catch_warnings():  # pyemv's two-key 3DES is what EMV specifies; cryptography frowns on it
        warnings.simplefilter("ignore")
        icc = kd.derive_icc_mk_a(issuer_master_key(profile), pan, psn or "00")
        session = kd.derive_common_sk(icc, bytes(tags[0x9F36]) + bytes(6))
        return ac.generate_ac(session, ac_input(tags), ac.PaddingType.EMV)


# Which test issuer a PAN belongs to, as an issuer host routes it: the longest matching issuer
# identification number (BIN) wins; an entry with an AID is preferred when the transaction names that
# AID (one issuer, two card products).  A profile added to the card emulators or to `qr make cpm`
# registers its BIN here, or the issuer answers "no such issuer".
PROFILE_BINS = (
    ("625094", None, "unionpay-hce"),
    ("622848", None, "unionpay-card"),
    ("476173", None, "visa"),
    ("541333", None, "mastercard"),
    ("497010", None, "cb-visa"),
    ("621483", None, "unionpay-pse"),
)


def profile_for(pan, aid=None):
    """The test profile whose BIN (and AID, when the table names one) matches; None if no issuer here."""
    best = None
    for bin_, bin_aid, profile in PROFILE_BINS:
        if not pan.startswith(bin_) or (bin_aid is not None and bin_aid != aid):
            continue
        rank = (len(bin_), bin_aid is not None)
        if best is None or rank > best[0]:
            best = (rank, profile)
    return None if best is None else best[1]


def verify_cryptogram(profile, pan, psn, tags):
    """True when 9F26 in `tags` is the cryptogram a card of `profile` computes over `tags`."""
    expected = application_cryptogram(profile, pan, psn, tags)
    return hmac.compare_digest(expected, bytes(tags.get(0x9F26, b"")))
