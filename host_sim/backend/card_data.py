"""The clear card data of a stored record, for the acquirer link: sealed part opened, clear part added.

A card payment record (a contactless read or a CPM payment code) carries its sensitive data (PAN,
expiry, track 2, cryptogram) sealed (record.EXT_EMV_SEALED) and the rest of the cryptogram's data in
clear (record.EXT_EMV_DATA).  Opening
the sealed part is the one thing here that depends on how terminals seal: `open_sealed` below.
"""

from protocol import record, tlv


class CardDataUnavailable(Exception):
    """This host cannot open the record's sealed card data."""


def open_sealed(store, terminal, rec):
    """The sealed TLV of `rec`, opened; None when it has none.

    Today a terminal seals under its own device data key, which the host does not hold.  When the
    terminals seal to the host (host_sim/backend/sealing.py), this function is replaced by
    `from host_sim.backend.sealing import open_sealed`."""
    if record.EXT_EMV_SEALED not in rec["ext"]:
        return None
    raise CardDataUnavailable("sealed under the terminal's device key, which the host does not hold")


def card_data(store, rec, opener=None):
    """{tag: bytes} of a decoded record's card data (sealed and clear); None when it carries none.
    Raises CardDataUnavailable when sealed data cannot be opened here, tlv.TlvError if it is malformed.
    `opener(store, terminal, rec)` replaces open_sealed (tests seal with a key they know)."""
    opened = (opener or open_sealed)(store, rec["terminal"].hex(), rec)
    tags = {}
    for part in (opened, rec["ext"].get(record.EXT_EMV_DATA)):
        if part:
            tags.update({tag: bytes(value) for tag, value, _ in tlv.decode(part)})
    return tags or None
