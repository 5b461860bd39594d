"""The clear card data of a stored record, for the acquirer link: sealed part opened, clear part added.

A card payment record (a contactless read or a CPM payment code) carries its sensitive data (PAN,
expiry, track 2, cryptogram) sealed (record.EXT_EMV_SEALED) and the rest of the cryptogram's data in
clear (record.EXT_EMV_DATA).  Opening the sealed part is host_sim/backend/sealing.py's `open_sealed`
(the collector's private key).
"""

from protocol import record, tlv


class CardDataUnavailable(Exception):
    """This host cannot open the record's sealed card data."""


def card_data(store, rec, opener=None):
    """{tag: bytes} of a decoded record's card data (sealed and clear); None when it carries none.
    Raises CardDataUnavailable when sealed data cannot be opened here (sealing.SealPending: not yet),
    tlv.TlvError if it is malformed.  `opener(store, terminal, rec)`: sealing.open_sealed unless given
    (sealing.opener(--seal-key), or tests that seal with a key they know)."""
    if opener is None:
        from host_sim.backend.sealing import open_sealed as opener  # it imports this module
    opened = opener(store, rec["terminal"].hex(), rec)
    tags = {}
    for part in (opened, rec["ext"].get(record.EXT_EMV_DATA)):
        if part:
            tags.update({tag: bytes(value) for tag, value, _ in tlv.decode(part)})
    return tags or None
