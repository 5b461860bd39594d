"""The card data of a contactless read as a record carries it: a part to seal and a part in clear.

Apart from the reader (firmware/emv.py) so that the decision, which records the read, does not load
the whole EMV kernel.
"""

from protocol import tlv

T_PAN = 0x5A
T_TRACK2 = 0x57
T_EXPIRY = 0x5F24
T_PSN = 0x5F34
T_AC = 0x9F26
T_CID = 0x9F27
T_ATC = 0x9F36
T_IAD = 0x9F10
T_UN = 0x9F37
T_AIP = 0x82


def sensitive(card):
    """The data that must leave the reader only sealed: PAN, expiry, track 2, cryptogram (as TLV)."""
    pan = card["pan"]
    if len(pan) % 2:
        pan += "F"
    out = tlv.encode(T_PAN, bytes.fromhex(pan)) + tlv.encode(T_EXPIRY, bytes.fromhex(card["expiry"]))
    if card["track2"] is not None:
        out += tlv.encode(T_TRACK2, card["track2"])
    return out + tlv.encode(T_AC, card["ac"])


def clear_data(card):
    """What the host needs in clear beside the sealed part: CID, ATC, IAD, UN, AIP, PAN sequence."""
    out = tlv.encode(T_CID, card["cid"]) + tlv.encode(T_ATC, card["atc"]) + tlv.encode(T_UN, card["un"])
    out += tlv.encode(T_AIP, card["aip"]) + tlv.encode(T_IAD, card["iad"])
    if card["psn"]:
        out += tlv.encode(T_PSN, card["psn"])
    return out
