"""EMV command APDUs, status words and data object lists, and the error every unusable card answer
becomes (EmvError with a code that firmware/nfc.py maps to a record reason).

Apart from the read (firmware/emv.py) and the application selection (firmware/emv_select.py) so that
MicroPython compiles three small modules instead of one large one.
"""

from protocol import tlv

# Codes of a failed read: EmvError's, and the NFC task's own two; firmware/decision.py decides each.
READ = 0  # the card answered nonsense, an error status or left data out
UNSUPPORTED = 1  # no application this terminal accepts
EXPIRED = 2  # application expiration date before today
NOT_EFFECTIVE = 3  # application effective date after today
CVM = 4  # the card requires a cardholder verification this terminal cannot do
REFUSED = 5  # the card or phone refused the transaction (GPO 6984/6985/6986)
CARD_REMOVED = 6  # the card left the field mid-read (the PN532 driver's TargetGone)
READER_FAILED = 7  # the PN532 itself failed during the read

NUMERIC_TAGS = (0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9A, 0x9C, 0x9F21)


class EmvError(ValueError):
    """A card answer the terminal cannot use: `code` says why (READ, UNSUPPORTED, ...), str(e) how (no
    card data in it)."""

    def __init__(self, text, code=READ):
        super().__init__(text)
        self.code = code


def select(name):
    return b"\x00\xa4\x04\x00" + bytes((len(name),)) + bytes(name) + b"\x00"


def read_record(sfi, number):
    return bytes((0x00, 0xB2, number, (sfi << 3) | 4, 0x00))


def gpo(pdol_data):
    body = tlv.encode(0x83, pdol_data)
    return b"\x80\xa8\x00\x00" + bytes((len(body),)) + body + b"\x00"


def generate_ac(cdol_data):
    # P1 0x80: ask for an ARQC (go online), which is what deferred authorisation needs.
    return b"\x80\xae\x80\x00" + bytes((len(cdol_data),)) + bytes(cdol_data) + b"\x00"


async def send(exchange, apdu):
    """The card's answer to `apdu`; a 6Cxx (wrong Le) is answered by sending again with Le = xx."""
    response = await exchange(apdu)
    if len(response) == 2 and response[0] == 0x6C:
        response = await exchange(bytes(apdu[:-1]) + bytes((response[1],)))
    return response


def status(response):
    """The status word of a response APDU as an int; EmvError when there is none."""
    if len(response) < 2:
        raise EmvError("response shorter than a status word")
    return (response[-2] << 8) | response[-1]


def check(response, what):
    """The data of a response APDU whose status word is 90 00; EmvError otherwise."""
    sw = status(response)
    if sw != 0x9000:
        raise EmvError("%s: status %04X" % (what, sw))
    return bytes(response[:-2])


def parse(data, what):
    try:
        return tlv.decode(data)
    except tlv.TlvError as e:
        raise EmvError("%s: bad TLV (%s)" % (what, e))


def dol_items(dol):
    """(tag, length) pairs of a data object list (tags and lengths only, no values)."""
    out = []
    i, n = 0, len(dol)
    try:
        while i < n:
            tag, _, i = tlv._read_tag(dol, i, n)
            length, i = tlv._read_length(dol, i, n)
            out.append((tag, length))
    except tlv.TlvError as e:
        raise EmvError("bad DOL (%s)" % e)
    return out


def fill_dol(dol, values):
    """Concatenate the DOL's values from `values`: numeric fields right-aligned, others left-aligned,
    unknown tags zero-filled (EMV Book 3, 5.4)."""
    out = bytearray()
    total = 0
    for tag, length in dol_items(dol):
        total += length
        if total > 252:
            raise EmvError("DOL asks for %d bytes" % total)
        v = values.get(tag, b"")
        if len(v) >= length:
            out += v[len(v) - length :] if tag in NUMERIC_TAGS else v[:length]
        elif tag in NUMERIC_TAGS:
            out += bytes(length - len(v)) + v
        else:
            out += v + bytes(length - len(v))
    return bytes(out)
