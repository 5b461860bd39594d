"""Emulated EMV contactless applications (HCE phones and IC cards) answering command APDUs.

Test profiles only: the PANs are published test numbers, the "cryptogram" is an HMAC under a fixed
test key.  A profile says which AIDs the PPSE lists, the PDOL, the GPO answer format, the AFL and the
records; faults make the same card misbehave the ways real ones do:

    sw          READ RECORD answers 6A 83 (record not found)
    gpo_sw      GET PROCESSING OPTIONS answers 69 85 (conditions of use not satisfied)
    truncated   the first record's TLV is cut short
    no_app      the PPSE lists only an application the terminal does not accept
    slow        (emulator) every answer waits `slow_s` seconds
    removal     (emulator) the card leaves the field after `remove_after` APDUs
"""

import hashlib
import hmac

from protocol import tlv

TEST_KEY = b"zhifu-test-card-key"
UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
UNIONPAY_CREDIT = bytes.fromhex("A000000333010102")
VISA = bytes.fromhex("A0000000031010")
MASTERCARD = bytes.fromhex("A0000000041010")

PDOL_UNIONPAY = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
PDOL_VISA = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
CDOL1_MC = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")

PROFILES = {
    # UnionPay HCE phone (云闪付 / bank app): qPBOC, GPO format 2 carrying the cryptogram.
    "unionpay-hce": {"label": "UnionPay HCE", "aids": [UNIONPAY_CREDIT, UNIONPAY_DEBIT], "pan": "6250947000000014",
                     "expiry": "2812", "psn": b"\x01", "pdol": PDOL_UNIONPAY, "gpo": 2, "phone": True},
    # UnionPay IC debit card (such as a rural 农民丰收卡): qPBOC, PAN in a record.
    "unionpay-card": {"label": "UnionPay IC", "aids": [UNIONPAY_DEBIT], "pan": "6228480000000000013",
                      "expiry": "2905", "psn": b"\x00", "pdol": PDOL_UNIONPAY, "gpo": 2, "phone": False},
    "visa": {"label": "Visa", "aids": [VISA], "pan": "4761739001010010", "expiry": "2712", "psn": b"\x01",
             "pdol": PDOL_VISA, "gpo": 2, "phone": False},
    # Mastercard M/Chip: GPO format 1, records, then GENERATE AC with CDOL1.
    "mastercard": {"label": "Mastercard", "aids": [MASTERCARD], "pan": "5413330089010434", "expiry": "2611",
                   "psn": b"\x00", "pdol": b"", "gpo": 1, "phone": False},
}

NFCID = {"unionpay-hce": b"\x08\x4a\x11\x20", "unionpay-card": b"\x04\x71\x2c\x9a\x51\x33\x80",
         "visa": b"\x04\x22\x33\x44\x55\x66\x77", "mastercard": b"\x04\x10\x20\x30\x40\x50\x60"}
ATS = bytes.fromhex("0578807002")

SW_OK = b"\x90\x00"


def _bcd_digits(digits):
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


class Card:
    def __init__(self, profile="unionpay-hce", faults=(), atc=1):
        self.name = profile
        self.p = PROFILES[profile]
        self.faults = set(faults)
        self.atc = atc
        self._last_gpo = b""

    # --- data ---------------------------------------------------------------------------------

    @property
    def nfcid(self):
        return NFCID[self.name]

    def track2(self):
        return _bcd_digits(self.p["pan"] + "D" + self.p["expiry"] + "201" + "0000000000")

    def _ppse(self):
        entries = b""
        aids = [bytes.fromhex("A0000009999999")] if "no_app" in self.faults else self.p["aids"]
        for i, aid in enumerate(aids):
            entry = tlv.encode(0x4F, aid) + tlv.encode(0x50, b"TEST") + tlv.encode(0x87, bytes([i + 1]))
            entries += tlv.encode(0x61, entry)
        return tlv.encode(0x6F, tlv.encode(0x84, b"2PAY.SYS.DDF01") + tlv.encode(0xA5, tlv.encode(0xBF0C, entries)))

    def _fci(self, aid):
        prop = tlv.encode(0x50, self.p["label"].encode())
        if self.p["pdol"]:
            prop += tlv.encode(0x9F38, self.p["pdol"])
        return tlv.encode(0x6F, tlv.encode(0x84, aid) + tlv.encode(0xA5, prop))

    def _records(self):
        rec1 = tlv.encode(0x57, self.track2()) + tlv.encode(0x5F20, b"TEST/CARD")
        rec2 = tlv.encode(0x5A, _bcd_digits(self.p["pan"])) + tlv.encode(0x5F24, bytes.fromhex(self.p["expiry"] + "31"))
        rec2 += tlv.encode(0x5F34, self.p["psn"])
        if self.p["gpo"] == 1:
            rec2 += tlv.encode(0x8C, CDOL1_MC)
        return {(1, 1): tlv.encode(0x70, rec1), (2, 1): tlv.encode(0x70, rec2)}

    def _ac(self, data):
        self.atc += 1
        atc = self.atc.to_bytes(2, "big")
        mac = hmac.new(TEST_KEY, self.p["pan"].encode() + atc + bytes(data), hashlib.sha256).digest()[:8]
        return atc, mac

    # --- APDUs --------------------------------------------------------------------------------

    def respond(self, apdu):
        apdu = bytes(apdu)
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4 and p1 == 0x04:
            if body == b"2PAY.SYS.DDF01":
                return self._ppse() + SW_OK
            if body in self.p["aids"]:
                self._selected = body
                return self._fci(body) + SW_OK
            return b"\x6a\x82"
        if (cla, ins) == (0x80, 0xA8):
            if "gpo_sw" in self.faults:
                return b"\x69\x85"
            return self._gpo(body) + SW_OK
        if ins == 0xB2:
            sfi = p2 >> 3
            rec = self._records().get((sfi, p1))
            if rec is None or "sw" in self.faults:
                return b"\x6a\x83"
            if "truncated" in self.faults:
                return rec[: len(rec) // 2] + SW_OK
            return rec + SW_OK
        if (cla, ins) == (0x80, 0xAE):
            atc, mac = self._ac(body)
            out = tlv.encode(0x9F27, b"\x80") + tlv.encode(0x9F36, atc) + tlv.encode(0x9F26, mac)
            out += tlv.encode(0x9F10, bytes.fromhex("0110A00003220000000000000000000000FF"))
            return tlv.encode(0x77, out) + SW_OK
        return b"\x6d\x00"

    def _gpo(self, body):
        afl = bytes.fromhex("08010100" "10010100")
        if self.p["gpo"] == 1:
            return tlv.encode(0x80, b"\x19\x80" + afl)
        data = body[2:] if body[:1] == b"\x83" else body
        atc, mac = self._ac(data)
        out = tlv.encode(0x82, b"\x00\x80") + tlv.encode(0x94, afl) + tlv.encode(0x9F36, atc)
        out += tlv.encode(0x9F26, mac) + tlv.encode(0x9F27, b"\x80")
        out += tlv.encode(0x9F10, bytes.fromhex("07010103A00000010A01000000000000000000"))
        if self.p["phone"]:
            out += tlv.encode(0x9F6C, b"\x00\x80")
        return tlv.encode(0x77, out)
