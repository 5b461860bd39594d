"""Emulated EMV contactless applications (HCE phones and IC cards) answering command APDUs.

Test profiles only: the PANs are test numbers of the test issuers in host_sim/issuers.py, and every
application cryptogram is the one those issuers verify (EMV common session key, issuers.AC_DATA over
the PDOL or CDOL data the terminal sent).  The cards behave the way real ones do, not the way the
terminal hopes:

    priorities   the PPSE lists each AID with its 87 priority; co-badged cards put the domestic
                 scheme first (cb-visa: CB priority 1, Visa 2; unionpay-hce: credit 1, debit 2)
    directory    "ppse" (BF0C entries) or "pse": no PPSE (6A82), a contact-style PSE whose FCI names
                 a directory file (88) read record by record until 6A83 (unionpay-pse)
    SELECT       6A82 for an AID the card does not have
    GPO          6700 when the command data is not 83 with exactly the PDOL's length
    cid          False: qVSDC answer without 9F27, the cryptogram type only in the IAD's CVR (visa)

Faults make the same card misbehave:

    aac         the card declines: AAC (9F27 00, CVR "AAC in GPO/first GENERATE AC")
    tc          the card approves offline: TC in the GPO answer although the terminal asked online
    no_cid      the GPO answer leaves 9F27 out (type in the IAD), on any qVSDC/qPBOC profile
    expired     expiry date January 2024 (5F24 and track 2)
    cvm         the CTQ (9F6C) says online PIN required
    wrong_fci   SELECT of the AID answers the PPSE's FCI (84 names the directory, not the AID)
    sw          READ RECORD answers 6A 83 (record not found)
    gpo_sw      GET PROCESSING OPTIONS answers 69 85 (conditions of use not satisfied)
    truncated   the first record's TLV is cut short
    no_app      the PPSE lists only an application the terminal does not accept
    slow        (emulator) every answer waits `slow_s` seconds
    removal     (emulator) the card leaves the field after `remove_after` APDUs
"""

from host_sim import issuers
from protocol import tlv

UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
UNIONPAY_CREDIT = bytes.fromhex("A000000333010102")
VISA = bytes.fromhex("A0000000031010")
MASTERCARD = bytes.fromhex("A0000000041010")
CB = bytes.fromhex("A0000000421010")
UNKNOWN = bytes.fromhex("A0000009999999")
PPSE = b"2PAY.SYS.DDF01"
PSE = b"1PAY.SYS.DDF01"

PDOL_UNIONPAY = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
PDOL_VISA = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
CDOL1_MC = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")

# Issuer application data: the byte at index 4 is CVR byte 2, whose bits 6-5 the card sets to the
# cryptogram type it returns (00 AAC, 01 TC, 10 ARQC; bits 8-7 10: no second GENERATE AC).
IAD_VISA = bytes.fromhex("06010A03A02000")  # format 0/1/3, CVN 10
IAD_UNIONPAY = bytes.fromhex("07010103A00000010A01000000000000000000")
IAD_MCHIP = bytes.fromhex("0110A00003220000000000000000000000FF")
CVR2 = {0x00: 0x80, 0x40: 0x90, 0x80: 0xA0}

PROFILES = {
    # UnionPay HCE phone (云闪付 / bank app): qPBOC, GPO format 2 carrying the cryptogram; the card
    # prefers its credit application.
    "unionpay-hce": {"label": "UnionPay HCE", "aids": [(UNIONPAY_CREDIT, 1), (UNIONPAY_DEBIT, 2)],
                     "pan": "6250947000000014", "expiry": "2812", "psn": b"\x01", "pdol": PDOL_UNIONPAY, "gpo": 2,
                     "phone": True, "iad": IAD_UNIONPAY},
    # UnionPay IC debit card (such as a rural 农民丰收卡): qPBOC, PAN in a record.
    "unionpay-card": {"label": "UnionPay IC", "aids": [(UNIONPAY_DEBIT, 1)], "pan": "6228480000000000018",
                      "expiry": "2905", "psn": b"\x00", "pdol": PDOL_UNIONPAY, "gpo": 2, "phone": False,
                      "iad": IAD_UNIONPAY},
    # UnionPay card without a PPSE: a PSE directory in records (directory-only).
    "unionpay-pse": {"label": "UnionPay PSE", "aids": [(UNIONPAY_CREDIT, 1), (UNIONPAY_DEBIT, 2)],
                     "pan": "6214830000000000015", "expiry": "3010", "psn": b"\x01", "pdol": PDOL_UNIONPAY,
                     "gpo": 2, "phone": False, "iad": IAD_UNIONPAY, "directory": "pse"},
    # Visa qVSDC card that leaves 9F27 out of the GPO answer.
    "visa": {"label": "Visa", "aids": [(VISA, 1)], "pan": "4761739001010010", "expiry": "2712", "psn": b"\x01",
             "pdol": PDOL_VISA, "gpo": 2, "phone": False, "iad": IAD_VISA, "cid": False},
    # French co-badged card: Cartes Bancaires first, Visa second.
    "cb-visa": {"label": "CB", "aids": [(CB, 1), (VISA, 2)], "pan": "4970100000000014", "expiry": "2810",
                "psn": b"\x00", "pdol": PDOL_VISA, "gpo": 2, "phone": False, "iad": IAD_VISA},
    # Mastercard M/Chip: GPO format 1, records, then GENERATE AC with CDOL1.
    "mastercard": {"label": "Mastercard", "aids": [(MASTERCARD, 1)], "pan": "5413330089010434", "expiry": "2911",
                   "psn": b"\x00", "pdol": b"", "gpo": 1, "phone": False, "iad": IAD_MCHIP},
}

NFCID = {"unionpay-hce": b"\x08\x4a\x11\x20", "unionpay-card": b"\x04\x71\x2c\x9a\x51\x33\x80",
         "unionpay-pse": b"\x04\x71\x2c\x9a\x51\x33\x81", "visa": b"\x04\x22\x33\x44\x55\x66\x77",
         "cb-visa": b"\x04\x22\x33\x44\x55\x66\x78", "mastercard": b"\x04\x10\x20\x30\x40\x50\x60"}
ATS = bytes.fromhex("0578807002")

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_NO_RECORD = b"\x6a\x83"
AFL = bytes.fromhex("08010100" "10010100")


def _bcd_digits(digits):
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def dol_values(dol, data):
    """{tag: value} of DOL-formatted `data`, or None when its length is not the DOL's."""
    out = {}
    i = 0
    for tag, length in _dol(dol):
        out[tag] = bytes(data[i : i + length])
        i += length
    return out if i == len(data) else None


def _dol(dol):
    items, i = [], 0
    while i < len(dol):
        tag, _, i = tlv._read_tag(dol, i, len(dol))
        length, i = tlv._read_length(dol, i, len(dol))
        items.append((tag, length))
    return items


class Card:
    def __init__(self, profile="unionpay-hce", faults=(), atc=1):
        self.name = profile
        self.p = PROFILES[profile]
        self.faults = set(faults)
        self.atc = atc
        self._selected = None

    # --- data ---------------------------------------------------------------------------------

    @property
    def nfcid(self):
        return NFCID[self.name]

    @property
    def expiry(self):
        return "2401" if "expired" in self.faults else self.p["expiry"]

    @property
    def aids(self):
        return [(UNKNOWN, 1)] if "no_app" in self.faults else self.p["aids"]

    def track2(self):
        return _bcd_digits(self.p["pan"] + "D" + self.expiry + "201" + "0000000000")

    def _entry(self, aid, priority):
        return tlv.encode(0x61, tlv.encode(0x4F, aid) + tlv.encode(0x50, b"TEST") + tlv.encode(0x87, bytes([priority])))

    def _ppse(self):
        entries = b"".join(self._entry(aid, prio) for aid, prio in self.aids)
        return tlv.encode(0x6F, tlv.encode(0x84, PPSE) + tlv.encode(0xA5, tlv.encode(0xBF0C, entries)))

    def _pse(self):
        return tlv.encode(0x6F, tlv.encode(0x84, PSE) + tlv.encode(0xA5, tlv.encode(0x88, b"\x01")))

    def _fci(self, aid):
        prop = tlv.encode(0x50, self.p["label"].encode())
        if self.p["pdol"]:
            prop += tlv.encode(0x9F38, self.p["pdol"])
        return tlv.encode(0x6F, tlv.encode(0x84, aid) + tlv.encode(0xA5, prop))

    def _records(self):
        rec1 = tlv.encode(0x57, self.track2()) + tlv.encode(0x5F20, b"TEST/CARD")
        rec2 = tlv.encode(0x5A, _bcd_digits(self.p["pan"])) + tlv.encode(0x5F24, bytes.fromhex(self.expiry + "31"))
        rec2 += tlv.encode(0x5F25, bytes.fromhex("230101")) + tlv.encode(0x5F34, self.p["psn"])
        if self.p["gpo"] == 1:
            rec2 += tlv.encode(0x8C, CDOL1_MC)
        return {(1, 1): tlv.encode(0x70, rec1), (2, 1): tlv.encode(0x70, rec2)}

    def _cryptogram(self, kind, terminal, aip):
        """(ATC, IAD, 9F26) of a new cryptogram of `kind` over the terminal data the card was given."""
        self.atc += 1
        atc = self.atc.to_bytes(2, "big")
        iad = bytearray(self.p["iad"])
        if self.p["gpo"] == 2:
            iad[4] = CVR2[kind]
        tags = dict(terminal)
        tags.update({0x82: aip, 0x9F36: atc, 0x9F10: bytes(iad)})
        return atc, bytes(iad), issuers.application_cryptogram(self.name, self.p["pan"], self.p["psn"].hex(), tags)

    def _kind(self, requested=None):
        """The cryptogram type the card returns: at GPO (requested None) it decides alone; GENERATE AC
        never gives more than was asked (TC only when a TC was asked)."""
        if "aac" in self.faults:
            return 0x00
        if "tc" in self.faults and requested in (None, 0x40):
            return 0x40
        return 0x80

    # --- APDUs --------------------------------------------------------------------------------

    def respond(self, apdu):
        apdu = bytes(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4 and p1 == 0x04:
            return self._select(body)
        if (cla, ins) == (0x80, 0xA8):
            if "gpo_sw" in self.faults:
                return b"\x69\x85"
            return self._gpo(body, apdu)
        if ins == 0xB2:
            return self._read_record(p1, p2 >> 3)
        if (cla, ins) == (0x80, 0xAE):
            return self._generate_ac(p1, body)
        return b"\x6d\x00"

    def _select(self, name):
        pse = self.p.get("directory") == "pse"
        if name == PPSE and not pse:
            self._selected = PPSE
            return self._ppse() + SW_OK
        if name == PSE and pse:
            self._selected = PSE
            return self._pse() + SW_OK
        for aid, _ in self.aids:
            if name == aid:
                self._selected = aid
                return (self._ppse() if "wrong_fci" in self.faults else self._fci(aid)) + SW_OK
        return SW_NOT_FOUND

    def _read_record(self, number, sfi):
        if self._selected == PSE:
            if sfi != 1 or not 1 <= number <= len(self.aids):
                return SW_NO_RECORD
            aid, prio = self.aids[number - 1]
            return tlv.encode(0x70, self._entry(aid, prio)) + SW_OK
        rec = self._records().get((sfi, number))
        if rec is None or "sw" in self.faults:
            return SW_NO_RECORD
        if "truncated" in self.faults:
            return rec[: len(rec) // 2] + SW_OK
        return rec + SW_OK

    def _gpo(self, body, apdu):
        if len(apdu) != 6 + len(body) or body[:1] != b"\x83" or len(body) < 2 or body[1] != len(body) - 2:
            return SW_WRONG_LENGTH
        terminal = dol_values(self.p["pdol"], body[2:])
        if terminal is None:
            return SW_WRONG_LENGTH
        if self.p["gpo"] == 1:
            return tlv.encode(0x80, b"\x19\x80" + AFL) + SW_OK
        kind = self._kind()
        aip = b"\x00\x80"
        atc, iad, ac = self._cryptogram(kind, terminal, aip)
        out = tlv.encode(0x82, aip) + tlv.encode(0x94, AFL) + tlv.encode(0x9F36, atc) + tlv.encode(0x9F26, ac)
        if self.p.get("cid", True) and "no_cid" not in self.faults:
            out += tlv.encode(0x9F27, bytes([kind]))
        out += tlv.encode(0x9F10, iad)
        if "cvm" in self.faults:
            out += tlv.encode(0x9F6C, b"\x80\x00")
        elif self.p["phone"]:
            out += tlv.encode(0x9F6C, b"\x00\x80")  # consumer device CVM performed
        return tlv.encode(0x77, out) + SW_OK

    def _generate_ac(self, p1, body):
        terminal = dol_values(CDOL1_MC, body)
        if terminal is None:
            return SW_WRONG_LENGTH
        kind = self._kind(p1 & 0xC0)
        atc, iad, ac = self._cryptogram(kind, terminal, b"\x19\x80")
        out = tlv.encode(0x9F27, bytes([kind])) + tlv.encode(0x9F36, atc) + tlv.encode(0x9F26, ac)
        out += tlv.encode(0x9F10, iad)
        return tlv.encode(0x77, out) + SW_OK
