"""The minimal message set of the first end-to-end slice: HELLO, RECORDS, ACK.

Each message is one frame payload: a type byte and a body.  The full link protocol (protocol/SPEC.md:
authentication, selective repeat, config, time, status) replaces this set; it keeps these three meanings.

    HELLO    0x01  terminal id (8) + runtime text (utf-8)
    RECORDS  0x02  count (1) + count x [length (2, LE) + record]
    ACK      0x03  highest sequence stored (4, LE): every record up to it is safe at the host
"""

import struct

HELLO = 1
RECORDS = 2
ACK = 3


class MessageError(ValueError):
    pass


def hello(terminal, runtime):
    return bytes([HELLO]) + terminal + runtime.encode()


def records(batch):
    out = bytearray([RECORDS, len(batch)])
    for rec in batch:
        out += struct.pack("<H", len(rec))
        out += rec
    return bytes(out)


def ack(seq):
    return bytes([ACK]) + struct.pack("<I", seq)


def parse(payload):
    """(type, body): HELLO -> (terminal, runtime), RECORDS -> [record bytes], ACK -> seq."""
    if not payload:
        raise MessageError("empty message")
    kind = payload[0]
    body = payload[1:]
    if kind == HELLO:
        if len(body) < 8:
            raise MessageError("HELLO shorter than a terminal id")
        try:
            text = bytes(body[8:]).decode()
        except UnicodeError:
            raise MessageError("HELLO runtime text is not UTF-8")
        return kind, (bytes(body[:8]), text)
    if kind == RECORDS:
        if not body:
            raise MessageError("RECORDS without a count")
        count = body[0]
        i = 1
        out = []
        for _ in range(count):
            if i + 2 > len(body):
                raise MessageError("RECORDS truncated before record %d" % len(out))
            (n,) = struct.unpack("<H", bytes(body[i : i + 2]))
            i += 2
            if i + n > len(body):
                raise MessageError("RECORDS truncated inside record %d" % len(out))
            out.append(bytes(body[i : i + n]))
            i += n
        if i != len(body):
            raise MessageError("RECORDS has %d bytes after its last record" % (len(body) - i))
        return kind, out
    if kind == ACK:
        if len(body) != 4:
            raise MessageError("ACK body must be 4 bytes")
        return kind, struct.unpack("<I", bytes(body))[0]
    raise MessageError("unknown message type %d" % kind)
