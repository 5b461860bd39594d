"""The collector's side of the acquirer link: a stored record as an ISO 8583 0100, the 0110 as a decision.

Two links carry the same bytes: `TcpLink` to an `acquirer-host` process (`collector --acquirer
HOST:PORT`), `LocalLink` to an AcquirerHost in this process (the default, with `--acquirer-rules`).
Anything but a well-formed answer to the request sent (no connection, a timeout, a closed connection,
bytes that do not decode, an answer to another request, response codes 30/91/96) raises
AcquirerUnavailable with the reason: the transaction stays pending and is asked again later; it is
never decided by a failure.  Field map: host_sim/backend/ISO8583.md.
"""

import hashlib
import socket
import time

from host_sim.backend import iso8583
from protocol import record

MERCHANT_ID = "ZHIFUTRANSIT001"  # DE 42: the card acceptor id the acquirer gave the fleet
MCC_TRANSIT = "4111"  # DE 18: local and suburban commuter passenger transport
ENTRY_MODE = {record.KIND_EMV_CONTACTLESS: "072", record.KIND_QR_CPM: "032"}  # DE 22: contactless chip / QR
POS_CONDITION = "27"  # DE 25: unattended terminal unable to retain the card
CST = 8 * 3600  # DE 12/13 are the terminal's local time, China Standard Time
# DE 55 in this order: the card's cryptogram data, then the terminal data the card signed.
ICC_ORDER = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A, 0x9F03, 0x84)


class AcquirerUnavailable(Exception):
    """No usable answer from the acquirer; str(e) is why.  The transaction stays pending."""


def _bcd(value, digits):
    return bytes.fromhex("%0*d" % (digits, value))


def terminal_data(rec):
    """What a contactless terminal gave the card to sign (firmware/emv.py terminal_data): the amount the
    card signed (the record's, or EXT_CARD_AMOUNT when a discount lowered the charge), currency and UTC
    date of the record's time, country China, TVR and transaction type zero."""
    signed = rec["ext"].get(record.EXT_CARD_AMOUNT)
    amount = int.from_bytes(signed, "little") if signed and len(signed) == 4 else rec["amount"]
    return {0x9F02: _bcd(amount, 12), 0x9F03: bytes(6), 0x9F1A: b"\x01\x56", 0x95: bytes(5),
            0x5F2A: _bcd(rec["currency"], 4), 0x9A: bytes.fromhex(time.strftime("%y%m%d", time.gmtime(rec["time"]))),
            0x9C: b"\x00"}


def reference(terminal_hex, seq):
    """DE 37: the same 12 digits for every attempt at one record, so the acquirer sees a repeat as one."""
    digest = hashlib.sha256(("%s|%d" % (terminal_hex, seq)).encode()).digest()
    return "%012d" % (int.from_bytes(digest[:8], "big") % 10**12)


def request(rec, tags, stan, now=None):
    """The 0100 fields for a decoded accepted record and its card data ({tag: bytes} or None)."""
    terminal = rec["terminal"].hex().upper()
    local = time.gmtime(rec["time"] + CST)
    fields = {
        "t": iso8583.AUTHORISATION_REQUEST, "3": "000000", "4": "%012d" % rec["amount"],
        "7": time.strftime("%m%d%H%M%S", time.gmtime(time.time() if now is None else now)),
        "11": "%06d" % stan, "12": time.strftime("%H%M%S", local), "13": time.strftime("%m%d", local),
        "18": MCC_TRANSIT, "22": ENTRY_MODE.get(rec["kind"], "002"), "25": POS_CONDITION,
        "37": reference(terminal, rec["seq"]), "41": terminal[-8:], "42": MERCHANT_ID,
        "48": iso8583.private_data({"TI": terminal, "SQ": str(rec["seq"]), "TK": rec["token"].hex(), "DA": "1"}),
        "49": "%03d" % rec["currency"],
    }
    fields.update(card_fields(rec, tags or {}))
    return fields


def card_fields(rec, tags):
    """DE 2, 14, 23, 35 and 55 from the card data; without any, DE 55 has what the record keeps in clear
    (ATC, AID)."""
    out = {}
    if 0x5A in tags:
        out["2"] = tags[0x5A].hex().upper().rstrip("F")
    if 0x57 in tags:
        track2 = tags[0x57].hex().upper().rstrip("F")
        out["35"] = track2.replace("D", "=")
        out.setdefault("2", track2.split("D", 1)[0])
        if "D" in track2:
            out["14"] = track2.split("D", 1)[1][:4]
    if 0x5F24 in tags:
        out["14"] = tags[0x5F24].hex()[:4]
    if 0x5F34 in tags:
        out["23"] = "%03d" % int(tags[0x5F34].hex()[-2:] or "0")
    icc = dict(tags)
    if rec["ext"].get(record.EXT_ATC) and 0x9F36 not in icc:
        icc[0x9F36] = rec["ext"][record.EXT_ATC]
    if tags and rec["kind"] == record.KIND_EMV_CONTACTLESS:  # a QR code was made before any amount was known
        for tag, value in terminal_data(rec).items():
            icc.setdefault(tag, value)
    aid = rec["ext"].get(record.EXT_AID)
    if aid and 0x84 not in icc and 0x4F not in icc:
        icc[0x84] = aid
    out["55"] = iso8583.icc_data({tag: icc[tag] for tag in ICC_ORDER if tag in icc})
    return out


def outcome(sent, reply):
    """(approved, reason) from the reply bytes to the request fields `sent`; AcquirerUnavailable if the
    reply is not an answer to it."""
    try:
        fields = iso8583.decode(reply)
    except iso8583.MessageError as e:
        raise AcquirerUnavailable("garbage reply: %s" % e) from None
    if fields["t"] != iso8583.AUTHORISATION_RESPONSE:
        raise AcquirerUnavailable("garbage reply: message type %s to an 0100" % fields["t"])
    if fields.get("11") != sent["11"] or fields.get("37") != sent["37"]:
        raise AcquirerUnavailable("garbage reply: answers STAN %s RRN %s, not STAN %s RRN %s"
                                  % (fields.get("11"), fields.get("37"), sent["11"], sent["37"]))
    code = fields.get("39", "")
    if len(code) != 2 or not code.isalnum():
        raise AcquirerUnavailable("garbage reply: response code %r" % code)
    if code in iso8583.TRY_AGAIN:
        raise AcquirerUnavailable("acquirer answered %s (%s)" % (code, fields.get("44") or
                                                                 iso8583.RESPONSE_TEXT[code]))
    if code == iso8583.APPROVED:
        return True, None
    return False, fields.get("44") or iso8583.RESPONSE_TEXT.get(code, "declined (%s)" % code)


def online_reference(terminal_hex, request_id):
    """DE 37 of a payment code's online authorisation: the same on a retry and on its reversal."""
    digest = hashlib.sha256(("online|%s|%d" % (terminal_hex, request_id)).encode()).digest()
    return "%012d" % (int.from_bytes(digest[:8], "big") % 10**12)


def online_request(terminal_hex, msg, stan, now=None):
    """The 0200 fields of one ONLINE_REQUEST (link.decode dict): purchase (DE 3 000000), entry mode QR
    (032), the code in DE 48 element PC with its family FM (host_sim/backend/ISO8583.md)."""
    from protocol import paycode

    now = time.time() if now is None else now
    local = time.gmtime(now + CST)
    terminal = terminal_hex.upper()
    return {
        "t": iso8583.FINANCIAL_REQUEST, "3": "000000", "4": "%012d" % msg["amount"],
        "7": time.strftime("%m%d%H%M%S", time.gmtime(now)), "11": "%06d" % stan,
        "12": time.strftime("%H%M%S", local), "13": time.strftime("%m%d", local), "18": MCC_TRANSIT, "22": "032",
        "25": POS_CONDITION, "37": online_reference(terminal, msg["request_id"]), "41": terminal[-8:],
        "42": MERCHANT_ID, "49": "%03d" % msg["currency"],
        "48": iso8583.private_data({"TI": terminal, "RQ": str(msg["request_id"]),
                                    "FM": paycode.NAMES.get(msg["family"], "unknown"), "PC": msg["code"].decode()}),
    }


def reversal(sent, stan, now=None):
    """The 0400 fields undoing the 0200 `sent`: same amount and RRN, DE 48 OS = the original STAN."""
    private = iso8583.private_elements(sent["48"])
    return {"t": iso8583.REVERSAL_REQUEST, "3": sent["3"], "4": sent["4"],
            "7": time.strftime("%m%d%H%M%S", time.gmtime(time.time() if now is None else now)),
            "11": "%06d" % stan, "37": sent["37"], "41": sent["41"], "42": sent["42"], "49": sent["49"],
            "48": iso8583.private_data({"TI": private["TI"], "RQ": private["RQ"], "OS": sent["11"]})}


def online_outcome(sent, reply, want):
    """(approved, reason, approval code, RRN) of the reply to `sent`, whose answer has MTI `want`;
    AcquirerUnavailable if it is not a usable answer to it."""
    try:
        fields = iso8583.decode(reply)
    except iso8583.MessageError as e:
        raise AcquirerUnavailable("garbage reply: %s" % e) from None
    if fields["t"] != want or fields.get("11") != sent["11"] or fields.get("37") != sent["37"]:
        raise AcquirerUnavailable("garbage reply: %s STAN %s RRN %s to %s STAN %s" % (
            fields["t"], fields.get("11"), fields.get("37"), sent["t"], sent["11"]))
    code = fields.get("39", "")
    if code in iso8583.TRY_AGAIN:
        raise AcquirerUnavailable("acquirer answered %s" % code)
    if code == iso8583.APPROVED:
        approval = fields.get("38", "")
        if len(approval) != 6:
            raise AcquirerUnavailable("garbage reply: approval code %r" % approval)
        return True, None, approval, fields["37"]
    return False, fields.get("44") or iso8583.RESPONSE_TEXT.get(code, "declined (%s)" % code), "", fields["37"]


class _Stan:
    """System trace audit numbers, 1..999999, starting from the time of day so a restart does not reuse them."""

    def __init__(self):
        self.value = int(time.time()) % 86400 * 10

    def next(self):
        self.value = self.value % 999999 + 1
        return self.value


class LocalLink:
    """The acquirer host in this process (host_sim/backend/acquirer_host.AcquirerHost)."""

    def __init__(self, host):
        self.host = host
        self.stan = _Stan()

    def exchange(self, message):
        delay = self.host.delay_s(message)
        if delay:
            time.sleep(delay)  # a slow issuer (AcquirerHost.delay_ms): callers run this in a worker thread
        reply = self.host.respond(message)
        if reply is None:
            raise AcquirerUnavailable("the acquirer host refused the message")
        return reply

    def close(self):
        pass


class TcpLink:
    """An `acquirer-host` over TCP, one connection kept open, reconnected when it fails."""

    def __init__(self, address, timeout=5.0):
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise ValueError("acquirer address wants HOST:PORT, got %r" % address)
        self.address = (host or "127.0.0.1", int(port))
        self.timeout = timeout
        self.sock = None
        self.stan = _Stan()

    def exchange(self, message):
        """The reply to one framed message; AcquirerUnavailable (and the connection dropped) otherwise."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.sendall(iso8583.framed(message))
            size = iso8583.frame_length(self._read(iso8583.HEADER_SIZE))
            return self._read(size)
        except socket.timeout:
            self.close()
            raise AcquirerUnavailable("no answer from %s:%d within %.1f s" % (*self.address, self.timeout)) from None
        except (OSError, iso8583.MessageError) as e:
            self.close()
            raise AcquirerUnavailable("acquirer %s:%d: %s" % (*self.address, e)) from None

    def _read(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return bytes(out)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def authorise(link, rec, tags):
    """(approved, reason) for one record over `link`; AcquirerUnavailable if there is no usable answer.
    A garbage reply also drops a TCP connection, whose byte stream can no longer be trusted."""
    sent = request(rec, tags, link.stan.next())
    reply = link.exchange(iso8583.encode(sent))
    try:
        return outcome(sent, reply)
    except AcquirerUnavailable:
        link.close()
        raise


def refund_request(terminal_hex, seq, amount, currency, case_id, stan, now=None):
    """The 0400 fields returning `amount` fen of the stored transaction (terminal, seq) after a complaint:
    the transaction's own RRN (its 0100's DE 37), DE 4 the amount returned (at most the fare), DE 48 `TI`,
    `SQ` and `CS` = the case number (host_sim/backend/ISO8583.md "Refunds")."""
    terminal = terminal_hex.upper()
    return {"t": iso8583.REVERSAL_REQUEST, "3": "000000", "4": "%012d" % amount,
            "7": time.strftime("%m%d%H%M%S", time.gmtime(time.time() if now is None else now)),
            "11": "%06d" % stan, "37": reference(terminal, seq), "41": terminal[-8:], "42": MERCHANT_ID,
            "49": "%03d" % currency,
            "48": iso8583.private_data({"TI": terminal, "SQ": str(seq), "CS": str(case_id)})}


def refund(link, terminal_hex, seq, amount, currency, case_id):
    """(approved, reason) of a refund sent over `link` as an 0400; AcquirerUnavailable if no usable 0410."""
    sent = refund_request(terminal_hex, seq, amount, currency, case_id, link.stan.next())
    reply = link.exchange(iso8583.encode(sent))
    try:
        fields = iso8583.decode(reply)
    except iso8583.MessageError as e:
        link.close()
        raise AcquirerUnavailable("garbage reply: %s" % e) from None
    if fields["t"] != iso8583.REVERSAL_RESPONSE or fields.get("11") != sent["11"]:
        link.close()
        raise AcquirerUnavailable("garbage reply: %s STAN %s to 0400 STAN %s" % (fields["t"], fields.get("11"),
                                                                                 sent["11"]))
    code = fields.get("39", "")
    if code in iso8583.TRY_AGAIN:
        raise AcquirerUnavailable("acquirer answered %s" % code)
    if code == iso8583.APPROVED:
        return True, None
    return False, fields.get("44") or iso8583.RESPONSE_TEXT.get(code, "declined (%s)" % code)
