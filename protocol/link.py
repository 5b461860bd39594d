"""Link protocol v1: the frame header and the message bodies (protocol/SPEC.md, "Link protocol").

A frame payload (what protocol/frame.py carries) is a header and a body.  This module packs and parses
both in the clear; protocol/session.py encrypts and authenticates them after AUTH.  Every malformed
payload raises LinkError with an ERROR code, never anything else.

    header  version u8 | type u8 | flags u8 | seq u16 | ack u16 [| sack 16 bytes LE when FLAG_SACK]
"""

import struct

from protocol import frame

VERSION = 1

HELLO = 1
AUTH = 2
RECORDS = 3
ACK = 4
CONFIG_OFFER = 5
CONFIG_CHUNK = 6
TIME = 7
STATUS = 8
ERROR = 9
BYE = 10
REFUSED = 11
ONLINE_REQUEST = 12  # terminal -> host: authorise a payment code now (SPEC section 4)
ONLINE_RESULT = 13  # host -> terminal: the answer to one ONLINE_REQUEST

NAMES = {
    HELLO: "HELLO", AUTH: "AUTH", RECORDS: "RECORDS", ACK: "ACK", CONFIG_OFFER: "CONFIG_OFFER",
    CONFIG_CHUNK: "CONFIG_CHUNK", TIME: "TIME", STATUS: "STATUS", ERROR: "ERROR", BYE: "BYE",
    REFUSED: "REFUSED",
}
NAMES[ONLINE_REQUEST] = "ONLINE_REQUEST"
NAMES[ONLINE_RESULT] = "ONLINE_RESULT"

FLAG_SECURE = 0x01  # counter + MAC present, body encrypted (protocol/session.py)
FLAG_SACK = 0x02  # a 128-bit selective-ack bitmap follows the cumulative ack
FLAG_SEQ = 0x04  # the frame occupies `seq` in the sender's reliable stream (retransmitted until acked)
FLAGS_KNOWN = 0x07

HEADER_SIZE = 7
SACK_SIZE = 16
SACK_BITS = 128
MAX_WINDOW = 128  # a receiver can report at most ack + 1 + 128 frames

CAP_RECORDS = 0x0001
CAP_CONFIG = 0x0002
CAP_TIME = 0x0004
CAP_STATUS = 0x0008
CAP_REFUSED = 0x0010  # the terminal quarantines the records a REFUSED names (reasons: protocol/refusal.py)
CAP_ONLINE = 0x0020  # ONLINE_REQUEST / ONLINE_RESULT

# ONLINE_RESULT results
ONLINE_APPROVED = 1
ONLINE_DECLINED = 2
ONLINE_UNAVAILABLE = 3
ONLINE_CODE_MAX = 24  # digits in a payment code (protocol/paycode.py)
ONLINE_REASON_MAX = 32

# STATUS health bits (SPEC section 7, "STATUS fields")
HEALTH_JOURNAL = 0x01
HEALTH_CLOCK = 0x02
HEALTH_CONFIG = 0x04
HEALTH_SCANNER = 0x08
HEALTH_NFC = 0x10

RECORDS_FULL = 0  # records as the journal stores them
RECORDS_TID_ELIDED = 1  # bytes 4..11 (terminal id) left out: the receiver restores the session's id
TID_OFFSET = 4
TID_SIZE = 8

# ERROR codes
E_VERSION = 1
E_TYPE = 2
E_MALFORMED = 3
E_UNKNOWN_TERMINAL = 4
E_AUTH_FAILED = 5
E_NOT_AUTHENTICATED = 6
E_TOO_LARGE = 7
E_CONFIG_REJECTED = 8
E_STORAGE = 9

MIN_FRAME = 64
MAX_FRAME = 512


class LinkError(ValueError):
    """A payload that is not a valid v1 message; `code` is the ERROR code to report."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code


def wire(payload):
    """The bytes to transmit for a payload: 0x00, then the frame (COBS(payload + CRC-32) + 0x00).
    The leading delimiter ends whatever noise preceded the frame, so noise never swallows it."""
    return b"\x00" + frame.encode(payload)


def max_payload(max_frame):
    """The largest payload whose wire() form fits in max_frame bytes (and in frame.MAX_PAYLOAD, the
    receive buffer every reader preallocates)."""
    p = min(max_frame - 7, frame.MAX_PAYLOAD)
    while 1 + p + 4 + (p + 4) // 254 + 1 + 1 > max_frame:
        p -= 1
    return p


def header_size(flags):
    return HEADER_SIZE + SACK_SIZE if flags & FLAG_SACK else HEADER_SIZE


def pack_header(buf, mtype, flags, seq, ack, sack=0):
    """Write the header into buf[0:]; returns its length."""
    struct.pack_into("<BBBHH", buf, 0, VERSION, mtype, flags, seq & 0xFFFF, ack & 0xFFFF)
    if flags & FLAG_SACK:
        for k in range(SACK_SIZE // 4):
            struct.pack_into("<I", buf, HEADER_SIZE + 4 * k, (sack >> (32 * k)) & 0xFFFFFFFF)
        return HEADER_SIZE + SACK_SIZE
    return HEADER_SIZE


def unpack_header(payload):
    """(type, flags, seq, ack, sack, body offset); raises LinkError."""
    if len(payload) < HEADER_SIZE:
        raise LinkError(E_MALFORMED, "frame shorter than the %d-byte header" % HEADER_SIZE)
    version, mtype, flags, seq, ack = struct.unpack_from("<BBBHH", payload, 0)
    if version != VERSION:
        raise LinkError(E_VERSION, "unsupported protocol version %d" % version)
    if mtype not in NAMES:
        raise LinkError(E_TYPE, "unknown message type %d" % mtype)
    if flags & ~FLAGS_KNOWN:
        raise LinkError(E_MALFORMED, "unknown flags 0x%02x" % flags)
    sack = 0
    if flags & FLAG_SACK:
        if len(payload) < HEADER_SIZE + SACK_SIZE:
            raise LinkError(E_MALFORMED, "frame shorter than its selective-ack bitmap")
        for k in range(SACK_SIZE // 4):
            sack |= struct.unpack_from("<I", payload, HEADER_SIZE + 4 * k)[0] << (32 * k)
    return mtype, flags, seq, ack, sack, header_size(flags)


def encode(mtype, body=b"", seq=0, ack=0, sack=None, flags=0):
    """A whole clear payload: header + body.  `sack` (an int) sets FLAG_SACK."""
    if sack is not None:
        flags |= FLAG_SACK
    buf = bytearray(header_size(flags) + len(body))
    n = pack_header(buf, mtype, flags, seq, ack, sack or 0)
    buf[n:] = body
    return bytes(buf)


# --- bodies --------------------------------------------------------------------------------------


def _text(s, limit=255):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > limit:
        raise LinkError(E_MALFORMED, "text longer than %d bytes" % limit)
    return bytes([len(b)]) + b


def hello(terminal, firmware, caps, window, max_frame, nonce):
    if len(terminal) != 8 or len(nonce) != 16:
        raise LinkError(E_MALFORMED, "HELLO needs an 8-byte terminal id and a 16-byte nonce")
    return bytes(terminal) + _text(firmware) + struct.pack("<HBH", caps, window, max_frame) + bytes(nonce)


def auth(proof, seq_high=None):
    """The terminal's AUTH is the proof; the host's (`seq_high` given) adds the highest record sequence
    number it holds for the terminal, which its proof covers."""
    if len(proof) != 32:
        raise LinkError(E_MALFORMED, "AUTH proof must be 32 bytes")
    if seq_high is None:
        return bytes(proof)
    return bytes(proof) + struct.pack("<I", seq_high)


def refused(entries):
    """REFUSED body: count u8, then count x (seq u32 LE, reason u8)."""
    if len(entries) > 255:
        raise LinkError(E_TOO_LARGE, "at most 255 refused records per message")
    out = bytearray(1 + 5 * len(entries))
    out[0] = len(entries)
    i = 1
    for seq, reason in entries:
        struct.pack_into("<I", out, i, seq)
        out[i + 4] = reason
        i += 5
    return bytes(out)


def records_into(buf, off, recs, terminal=None):
    """Pack a RECORDS body into buf at off; returns the end offset.  Elides the terminal id when
    every record carries `terminal` (the session's authenticated id)."""
    mode = RECORDS_FULL
    if terminal is not None:
        mode = RECORDS_TID_ELIDED
        for rec in recs:
            if bytes(rec[TID_OFFSET:TID_OFFSET + TID_SIZE]) != terminal:
                mode = RECORDS_FULL
                break
    if len(recs) > 255:
        raise LinkError(E_TOO_LARGE, "at most 255 records per frame")
    buf[off] = mode
    buf[off + 1] = len(recs)
    i = off + 2
    for rec in recs:
        n = len(rec)
        if n < TID_OFFSET + TID_SIZE or n > 255:
            raise LinkError(E_MALFORMED, "record of %d bytes" % n)
        if mode == RECORDS_TID_ELIDED:
            buf[i] = n - TID_SIZE
            buf[i + 1:i + 1 + TID_OFFSET] = rec[:TID_OFFSET]
            buf[i + 1 + TID_OFFSET:i + 1 + n - TID_SIZE] = rec[TID_OFFSET + TID_SIZE:]
            i += 1 + n - TID_SIZE
        else:
            buf[i] = n
            buf[i + 1:i + 1 + n] = rec
            i += 1 + n
    return i


def records_size(recs, terminal=None):
    """The size of the RECORDS body records_into() packs for these records."""
    n = 2
    elide = terminal is not None
    for rec in recs:
        n += 1 + len(rec)
        if elide and bytes(rec[TID_OFFSET:TID_OFFSET + TID_SIZE]) != terminal:
            elide = False
    return n - TID_SIZE * len(recs) if elide else n


def records(recs, terminal=None):
    buf = bytearray(records_size(recs, terminal))
    return bytes(memoryview(buf)[:records_into(buf, 0, recs, terminal)])


def config_offer(kind, version, size, digest, signature):
    if len(digest) != 32:
        raise LinkError(E_MALFORMED, "CONFIG_OFFER digest must be 32 bytes (SHA-256)")
    return struct.pack("<BII", kind, version, size) + bytes(digest) + _text(signature)


def config_chunk(kind, version, offset, data):
    return struct.pack("<BII", kind, version, offset) + bytes(data)


def time_sync(echo, unix_ms, bound_ms):
    return struct.pack("<IQI", echo & 0xFFFFFFFF, unix_ms, bound_ms)


def status(depth, health, signal, crc_errors, mac_errors, replays, retransmits, uptime_s, ext=None):
    """`ext`, when given, is (journal_free, journal_dropped, reconnects, deny_version): the 30-byte form,
    or those and (quarantined, damaged): the 34-byte form, or those and (log_lines, log_alerts): 38 bytes."""
    body = struct.pack("<IBbHHHHI", depth, health, signal, min(crc_errors, 0xFFFF), min(mac_errors, 0xFFFF),
                       min(replays, 0xFFFF), min(retransmits, 0xFFFF), uptime_s)
    if ext is None:
        return body
    free, dropped, reconnects, deny_version = ext[:4]
    body += struct.pack("<IHHI", free, min(dropped, 0xFFFF), min(reconnects, 0xFFFF), deny_version)
    if len(ext) > 4:
        body += struct.pack("<H", min(ext[4], 0xFFFF)) + struct.pack("<H", min(ext[5], 0xFFFF))
    if len(ext) > 6:
        body += struct.pack("<H", min(ext[6], 0xFFFF)) + struct.pack("<H", min(ext[7], 0xFFFF))
    return body


def error(code, text=""):
    return bytes([code]) + _text(text)


def bye(reason=0):
    return bytes([reason])


def online_request(request_id, family, amount, currency, deadline_ms, code):
    """ONLINE_REQUEST body: request id u32, family u8, amount u32, currency u16, deadline_ms u16, code
    (u8 length + ASCII digits), little-endian."""
    code = bytes(code)
    if not 1 <= len(code) <= ONLINE_CODE_MAX or not _all_digits(code):
        raise LinkError(E_MALFORMED, "ONLINE_REQUEST code must be 1..%d ASCII digits" % ONLINE_CODE_MAX)
    return struct.pack("<IBIHH", request_id, family, amount, currency, deadline_ms) + bytes([len(code)]) + code


def online_result(request_id, result, reason="", approval=b"", reference=b""):
    """ONLINE_RESULT body: request id u32, result u8, reason (u8 length + UTF-8, <= 32 bytes), then when
    approved the approval code (6 ASCII) and retrieval reference (12 ASCII)."""
    if result not in (ONLINE_APPROVED, ONLINE_DECLINED, ONLINE_UNAVAILABLE):
        raise LinkError(E_MALFORMED, "ONLINE_RESULT result %r" % result)
    body = struct.pack("<IB", request_id, result) + _text(reason, ONLINE_REASON_MAX)
    if result == ONLINE_APPROVED:
        approval, reference = _ascii(approval), _ascii(reference)
        if len(approval) != 6 or len(reference) != 12:
            raise LinkError(E_MALFORMED, "an approval needs a 6-character code and a 12-character reference")
        body += approval + reference
    return body


def _ascii(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def _all_digits(b):
    for c in b:
        if not 48 <= c <= 57:
            return False
    return True


def _decode_online(mtype, body, msg):
    if mtype == ONLINE_REQUEST:
        if len(body) < 14:
            raise LinkError(E_MALFORMED, "ONLINE_REQUEST truncated")
        msg["request_id"], msg["family"], msg["amount"], msg["currency"], msg["deadline_ms"] = \
            struct.unpack_from("<IBIHH", body, 0)
        n = body[13]
        _need(body[14:], n, "ONLINE_REQUEST code")
        code = bytes(body[14:])
        if not 1 <= n <= ONLINE_CODE_MAX or not _all_digits(code):
            raise LinkError(E_MALFORMED, "ONLINE_REQUEST code must be 1..%d ASCII digits" % ONLINE_CODE_MAX)
        msg["code"] = code
        return msg
    if len(body) < 6:
        raise LinkError(E_MALFORMED, "ONLINE_RESULT truncated")
    msg["request_id"], msg["result"] = struct.unpack_from("<IB", body, 0)
    if msg["result"] not in (ONLINE_APPROVED, ONLINE_DECLINED, ONLINE_UNAVAILABLE):
        raise LinkError(E_MALFORMED, "ONLINE_RESULT result %d" % msg["result"])
    msg["reason"], j = _read_text(body, 5, "ONLINE_RESULT")
    if msg["result"] == ONLINE_APPROVED:
        _need(body[j:], 18, "ONLINE_RESULT approval")
        msg["approval"] = bytes(body[j:j + 6])
        msg["reference"] = bytes(body[j + 6:j + 18])
    else:
        _need(body[j:], 0, "ONLINE_RESULT tail")
        msg["approval"] = msg["reference"] = b""
    return msg


def encode_message(msg, terminal=None):
    """The clear payload of a message dict as decode() returns it (golden vectors, tools)."""
    name = msg["type"]
    mtype = 0
    for k in NAMES:
        if NAMES[k] == name:
            mtype = k
    if mtype == HELLO:
        body = hello(msg["terminal"], msg["firmware"], msg["caps"], msg["window"], msg["max_frame"], msg["nonce"])
    elif mtype == AUTH:
        body = auth(msg["proof"], msg.get("seq_high"))
    elif mtype == RECORDS:
        body = records(msg["records"], terminal if msg.get("mode") == RECORDS_TID_ELIDED else None)
    elif mtype == ACK:
        body = b""
    elif mtype == CONFIG_OFFER:
        body = config_offer(msg["kind"], msg["version"], msg["size"], msg["digest"], msg["signature"])
    elif mtype == CONFIG_CHUNK:
        body = config_chunk(msg["kind"], msg["version"], msg["offset"], msg["data"])
    elif mtype == TIME:
        body = time_sync(msg["echo"], msg["unix_ms"], msg["bound_ms"])
    elif mtype == STATUS:
        ext = [msg[k] for k in STATUS_EXT_FIELDS] if STATUS_EXT_FIELDS[0] in msg else None
        if ext is not None and "quarantined" in msg:
            ext += [msg["quarantined"], msg["damaged"]]
            if "log_lines" in msg:
                ext += [msg["log_lines"], msg["log_alerts"]]
        body = status(*[msg[k] for k in STATUS_FIELDS], ext=ext)
    elif mtype == ERROR:
        body = error(msg["code"], msg["text"])
    elif mtype == BYE:
        body = bye(msg["reason"])
    elif mtype == REFUSED:
        body = refused([(e["seq"], e["reason"]) for e in msg["refused"]])
    elif mtype == ONLINE_REQUEST:
        body = online_request(msg["request_id"], msg["family"], msg["amount"], msg["currency"], msg["deadline_ms"],
                              msg["code"])
    elif mtype == ONLINE_RESULT:
        body = online_result(msg["request_id"], msg["result"], msg["reason"], msg["approval"], msg["reference"])
    else:
        raise LinkError(E_TYPE, "unknown message type %r" % name)
    flags = msg["flags"]
    return encode(mtype, body, msg["seq"], msg["ack"], msg["sack"] if flags & FLAG_SACK else None,
                  flags & ~FLAG_SACK)


# --- decoding ------------------------------------------------------------------------------------

STATUS_FIELDS = ("depth", "health", "signal", "crc_errors", "mac_errors", "replays", "retransmits", "uptime_s")
STATUS_EXT_FIELDS = ("journal_free", "journal_dropped", "reconnects", "deny_version")
STATUS_SIZE = 18
STATUS_EXT_SIZE = 30  # then quarantined u16, damaged u16: 34 bytes; then log_lines u16, log_alerts u16: 38


def _need(body, n, what):
    if len(body) != n:
        raise LinkError(E_MALFORMED, "%s body must be %d bytes, not %d" % (what, n, len(body)))


def _read_text(body, i, what):
    if i >= len(body):
        raise LinkError(E_MALFORMED, "%s truncated before its text" % what)
    n = body[i]
    if i + 1 + n > len(body):
        raise LinkError(E_MALFORMED, "%s text runs past the end" % what)
    try:
        return bytes(body[i + 1:i + 1 + n]).decode(), i + 1 + n
    except UnicodeError:
        raise LinkError(E_MALFORMED, "%s text is not UTF-8" % what)


def _records(body, terminal):
    if len(body) < 2:
        raise LinkError(E_MALFORMED, "RECORDS without mode and count")
    mode = body[0]
    count = body[1]
    if mode == RECORDS_TID_ELIDED:
        if terminal is None:
            raise LinkError(E_MALFORMED, "RECORDS elide the terminal id before the terminal is known")
    elif mode != RECORDS_FULL:
        raise LinkError(E_MALFORMED, "unknown RECORDS mode %d" % mode)
    out = []
    i = 2
    for _ in range(count):
        if i >= len(body):
            raise LinkError(E_MALFORMED, "RECORDS truncated before record %d" % len(out))
        n = body[i]
        i += 1
        if i + n > len(body):
            raise LinkError(E_MALFORMED, "RECORDS truncated inside record %d" % len(out))
        if n < TID_OFFSET + (0 if mode == RECORDS_TID_ELIDED else TID_SIZE):
            raise LinkError(E_MALFORMED, "record %d too short" % len(out))
        rec = bytes(body[i:i + n])
        if mode == RECORDS_TID_ELIDED:
            rec = rec[:TID_OFFSET] + bytes(terminal) + rec[TID_OFFSET:]
        out.append(rec)
        i += n
    if i != len(body):
        raise LinkError(E_MALFORMED, "RECORDS has %d bytes after its last record" % (len(body) - i))
    return out


def decode(payload, terminal=None):
    """A clear payload as a dict: "type" (name), "flags", "seq", "ack", "sack" and the body's fields.
    `terminal` is the session's terminal id, needed for RECORDS that elide it.  Raises LinkError."""
    mtype, flags, seq, ack, sack, i = unpack_header(payload)
    if flags & FLAG_SECURE:
        raise LinkError(E_MALFORMED, "a secured frame must be opened by its session first")
    body = memoryview(payload)[i:]
    msg = {"type": NAMES[mtype], "flags": flags, "seq": seq, "ack": ack, "sack": sack}
    if mtype == HELLO:
        if len(body) < 9:
            raise LinkError(E_MALFORMED, "HELLO truncated")
        msg["terminal"] = bytes(body[:8])
        msg["firmware"], j = _read_text(body, 8, "HELLO")
        _need(body[j:], 21, "HELLO tail")
        msg["caps"], msg["window"], msg["max_frame"] = struct.unpack_from("<HBH", body, j)
        msg["nonce"] = bytes(body[j + 5:j + 21])
        if msg["window"] < 1 or msg["window"] > MAX_WINDOW:
            raise LinkError(E_MALFORMED, "HELLO window %d outside 1..%d" % (msg["window"], MAX_WINDOW))
        if msg["max_frame"] < MIN_FRAME or msg["max_frame"] > MAX_FRAME:
            raise LinkError(E_MALFORMED, "HELLO max frame %d outside %d..%d" % (msg["max_frame"], MIN_FRAME,
                                                                                 MAX_FRAME))
    elif mtype == AUTH:
        if len(body) != 36:  # the host's: proof and seq_high u32; the terminal's: the proof
            _need(body, 32, "AUTH")
        msg["proof"] = bytes(body[:32])
        if len(body) == 36:
            msg["seq_high"] = struct.unpack_from("<I", body, 32)[0]
    elif mtype == RECORDS:
        msg["mode"] = body[0] if len(body) else 0
        msg["records"] = _records(body, terminal)
    elif mtype == ACK:
        _need(body, 0, "ACK")
    elif mtype == CONFIG_OFFER:
        if len(body) < 42:
            raise LinkError(E_MALFORMED, "CONFIG_OFFER truncated")
        msg["kind"], msg["version"], msg["size"] = struct.unpack_from("<BII", body, 0)
        msg["digest"] = bytes(body[9:41])
        n = body[41]
        _need(body[42:], n, "CONFIG_OFFER signature")
        msg["signature"] = bytes(body[42:])
    elif mtype == CONFIG_CHUNK:
        if len(body) < 9:
            raise LinkError(E_MALFORMED, "CONFIG_CHUNK truncated")
        msg["kind"], msg["version"], msg["offset"] = struct.unpack_from("<BII", body, 0)
        msg["data"] = bytes(body[9:])
    elif mtype == TIME:
        _need(body, 16, "TIME")
        msg["echo"], msg["unix_ms"], msg["bound_ms"] = struct.unpack_from("<IQI", body, 0)
    elif mtype == STATUS:
        if len(body) not in (STATUS_EXT_SIZE, STATUS_EXT_SIZE + 4, STATUS_EXT_SIZE + 8):
            _need(body, STATUS_SIZE, "STATUS")
        values = struct.unpack_from("<IBbHHHHI", body, 0)
        for k in range(len(STATUS_FIELDS)):
            msg[STATUS_FIELDS[k]] = values[k]
        if len(body) >= STATUS_EXT_SIZE:
            values = struct.unpack_from("<IHHI", body, STATUS_SIZE)
            for k in range(len(STATUS_EXT_FIELDS)):
                msg[STATUS_EXT_FIELDS[k]] = values[k]
        if len(body) >= STATUS_EXT_SIZE + 4:
            msg["quarantined"] = struct.unpack_from("<H", body, STATUS_EXT_SIZE)[0]
            msg["damaged"] = struct.unpack_from("<H", body, STATUS_EXT_SIZE + 2)[0]
        if len(body) == STATUS_EXT_SIZE + 8:
            msg["log_lines"] = struct.unpack_from("<H", body, STATUS_EXT_SIZE + 4)[0]
            msg["log_alerts"] = struct.unpack_from("<H", body, STATUS_EXT_SIZE + 6)[0]
    elif mtype == ERROR:
        if len(body) < 2:
            raise LinkError(E_MALFORMED, "ERROR truncated")
        msg["code"] = body[0]
        msg["text"], j = _read_text(body, 1, "ERROR")
        _need(body[j:], 0, "ERROR tail")
    elif mtype == REFUSED:
        if len(body) < 1:
            raise LinkError(E_MALFORMED, "REFUSED without a count")
        _need(body, 1 + 5 * body[0], "REFUSED")
        entries = []
        for k in range(body[0]):
            entries.append({"seq": struct.unpack_from("<I", body, 1 + 5 * k)[0], "reason": body[5 + 5 * k]})
        msg["refused"] = entries
    elif mtype == ONLINE_REQUEST or mtype == ONLINE_RESULT:
        return _decode_online(mtype, body, msg)
    else:  # BYE
        _need(body, 1, "BYE")
        msg["reason"] = body[0]
    return msg
