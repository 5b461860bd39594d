"""The fuzz oracle: one function per parser family that takes raw bytes from outside.

This file runs unchanged on CPython (the fuzzer) and inside MicroPython (the corpus replay in
tests/host_sim/fuzz/test_fuzz_corpus.py), so it imports only protocol/ and firmware/, each target
importing its parsers when first run (a 128k heap holds one family at a time), and keeps to the
device-code rules; the HOST_ONLY targets (host tools) run on CPython alone.  A target returns a
short outcome ("ok" or the documented error class it caught); any other exception, including a
failed round-trip or chunking check (AssertionError), is a finding.
"""

DEVICE_KEY = bytes(range(0x40, 0x60))
TERMINAL = b"ZF\x00\x00\x00\x00\x01\x07"
TRANSCRIPT = bytes(range(32))
SEAL_KEY = bytes(range(0x10, 0x30))
TOKEN = bytes(range(0xA0, 0xB0))
PART = 14 + 128  # one EXT_SEAL_KEY value: its head (seal_open.PART_HEAD_SIZE) and half an RSA-2048 block


def split_at(data):
    """A chunk boundary derived from the input itself, for the chunking-invariance checks."""
    return (data[0] * 7 + len(data)) % (len(data) + 1) if data else 0


def t_tlv(data):
    from protocol import tlv

    try:
        objects = tlv.decode(data)
    except tlv.TlvError:
        return "TlvError"
    flat = [(t, v) for t, v, _ in objects]
    again = tlv.decode(b"".join([tlv.encode(t, v) for t, v in flat]))
    assert [(t, v) for t, v, _ in again] == flat, "TLV re-encoding changed the objects"
    return "ok"


def t_cpm(data):
    """The decision's path for a payment code: decode, payment data, checks, account number."""
    from protocol import cpm

    try:
        tags = cpm.payment_data(cpm.decode(data))
        cpm.check(tags, 1795000000)
        cpm.check(tags, None)
        cpm.account_number(tags)
        cpm.tlv_of(tags, cpm.CLEAR_TAGS)
    except cpm.CpmError:
        return "CpmError"
    except UnicodeError:
        return "UnicodeError"
    return "ok"


def t_mpm(data):
    from protocol import mpm

    try:
        objects, _ = mpm.decode(data)
        mpm.fields(objects)
    except mpm.MpmError:
        return "MpmError"
    return "ok"


def t_ticket(data):
    from protocol import ticket

    try:
        fields, signed, signature = ticket.parse(data)
        assert ticket.parse(ticket.encode(signed, signature))[0] == fields, "ticket round trip"
        ticket.check_window(fields, 1795000000)
    except ticket.TicketError:
        return "TicketError"
    except UnicodeError:
        return "UnicodeError"
    return "ok"


def t_gm65(data):
    from protocol import gm65

    cut = split_at(data)
    for commands in (True, False):
        whole = gm65.FrameReader(commands).feed(data)
        reader = gm65.FrameReader(commands)
        parts = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert parts == whole, "GM65 frames depend on how the bytes were chunked"
    return "ok"


def t_pn532(data):
    from protocol import pn532

    cut = split_at(data)
    whole = pn532.FrameReader().feed(data)
    reader = pn532.FrameReader()
    assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == whole, "PN532 frames depend on chunking"
    outcome = "ok"
    payloads = [payload for event, payload in whole if event == pn532.EV_FRAME] + [data]
    for payload in payloads:
        for parse in (pn532.parse_firmware_version, pn532.parse_sam_configuration,
                      pn532.parse_in_list_passive_target, pn532.parse_in_data_exchange):
            try:
                parse(payload)
            except pn532.Pn532Error:
                outcome = "Pn532Error"
    return outcome


def t_at(data):
    from protocol import at

    cut = split_at(data)
    for push in (True, False):
        whole = at.AtReader(push=push).feed(data)
        reader = at.AtReader(push=push)
        parts = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert _merge_data(parts) == _merge_data(whole), "AT events depend on chunking"
        for event in whole:
            if event[0] == at.LINE:
                at.params(event[1], b"+QIURC:")
                at.params(event[1], b"+CSQ:")
    for line in bytes(data).split(b"\r"):
        at.classify(line)
        at.payload_header(line)
        at.payload_header(line, False)
        at.params(line, line[:7])
    return "ok"


def _merge_data(events):
    """Payload bytes split over two reads arrive as two DATA events: join neighbours to compare."""
    from protocol import at

    out = []
    for event in events:
        if out and event[0] == at.DATA and out[-1][0] == at.DATA and out[-1][1] == event[1]:
            out[-1] = (at.DATA, event[1], out[-1][2] + event[2])
        else:
            out.append(event)
    return out


def t_cobs(data):
    from protocol import cobs

    assert cobs.decode(cobs.encode(data)) == bytes(data), "COBS round trip"
    try:
        cobs.decode(data)
    except cobs.CobsError:
        return "CobsError"
    return "ok"


def t_frame(data):
    from protocol import frame

    cut = split_at(data)
    whole = frame.FrameReader().feed(data)
    reader = frame.FrameReader()
    assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == whole, "link frames depend on chunking"
    payload = data[: frame.MAX_PAYLOAD]
    assert frame.FrameReader().feed(frame.encode(payload)) == [bytes(payload)], "frame round trip"
    return "ok"


def t_link(data):
    from protocol import link

    try:
        link.decode(data, TERMINAL)
    except link.LinkError:
        pass
    try:
        link.unpack_header(data)
        msg = link.decode(data)
    except link.LinkError:
        return "LinkError"
    try:
        again = link.decode(link.encode_message(msg))
    except link.LinkError:
        return "ok-unencodable"
    assert again == msg, "link message round trip"
    return "ok"


def t_session(data):
    from protocol import link, session

    host = session.Session(DEVICE_KEY, session.ROLE_HOST, TRANSCRIPT)
    try:
        clear = host.open(data)
    except link.LinkError:
        return "LinkError"
    if clear is None:
        return "rejected"
    try:
        link.decode(clear)
    except link.LinkError:
        return "ok-LinkError"
    return "ok"


def t_record(data):
    from protocol import record

    try:
        rec = record.decode(data)
    except record.RecordError:
        return "RecordError"
    ext = sorted(rec["ext"].items())
    try:
        again = record.encode(rec["terminal"], rec["seq"], rec["time"], rec["kind"], rec["amount"],
                              rec["currency"], rec["decision"], rec["reason"], rec["fare_id"], rec["token"], ext)
    except record.RecordError:
        return "ok-unencodable"
    assert record.decode(again) == rec, "record round trip"
    return "ok"


def t_bundle(data):
    from protocol import bundle as deny

    try:
        deny.deny_head(data[: deny.HEAD], len(data))
    except deny.BundleError:
        return "BundleError"
    return "ok"


def t_fleet(data):
    """The bundle layout and its body, without the RSA signature check that guards them on a terminal."""
    import io

    from firmware.config import fleet as stored
    from protocol import fleet

    try:
        kind, _, b, _, _ = fleet.head(data[: fleet.HEAD], len(data))
        body = data[fleet.HEAD : fleet.HEAD + b]
        whole = fleet.fares(body) if kind == fleet.KIND_FARES else fleet.keyring(body)
    except fleet.FleetError:
        whole = None
    try:
        f = io.BytesIO(bytes(data))
        kind, _, b, _, _ = stored.read_head(f, len(data))
        streamed = stored.read_body(f, kind, b, bytearray(fleet.KEY_ENTRY))
    except fleet.FleetError:
        streamed = None
    assert (whole is None) == (streamed is None), "streamed and whole fleet parses disagree"
    if whole is None:
        return "FleetError"
    if kind != fleet.KIND_FARES:
        whole = (whole.keys, whole.revoked, whole.revoked_tickets)
        streamed = (streamed.keys, streamed.revoked, streamed.revoked_tickets)
    assert whole == streamed, "streamed and whole fleet parses disagree"
    return "ok"


def t_tokenkey(data):
    from protocol import tokenkey

    try:
        tokenkey.open_bundle(DEVICE_KEY, data)
    except tokenkey.TokenKeyError:
        return "TokenKeyError"
    return "ok"


def t_seal_open(data):
    from protocol import seal_open

    outcome = "ok"
    try:
        seal_open.join_parts([data[i : i + PART] for i in range(0, len(data), PART)])
    except seal_open.SealError:
        outcome = "SealError"
    try:
        seal_open.open_data(SEAL_KEY, data, TOKEN)
    except seal_open.SealError:
        outcome = "SealError"
    return outcome


def answers_of(data):
    """A scripted card's answers: each a 2-byte big-endian length and that many bytes."""
    out = []
    i = 0
    while i + 2 <= len(data):
        n = (data[i] << 8) | data[i + 1]
        out.append(bytes(data[i + 2 : i + 2 + n]))
        i += 2 + n
    return out


def t_emv(data):
    """The contactless read against a card that gives these answers in order, then 6D00."""
    import asyncio

    from firmware import emv

    answers = answers_of(data)

    async def exchange(apdu):
        return answers.pop(0) if answers else b"\x6d\x00"

    term = emv.terminal_data(250, b"\x12\x34\x56\x78", 1795000000)
    try:
        asyncio.run(emv.read(exchange, term))
    except emv.EmvError:
        return "EmvError"
    return "ok"


def t_emv_fields(data):
    """The EMV helpers that read card data directly: AFL, track 2, DOL."""
    from firmware import emv, emv_apdu

    outcome = "ok"
    for step in (emv.afl_entries, emv.pan_from_track2, emv_apdu.dol_items):
        try:
            step(data)
        except emv.EmvError:
            outcome = "EmvError"
    try:
        emv.fill_dol(data, {0x9F02: b"\x00\x00\x00\x00\x02\x50"})
    except emv.EmvError:
        outcome = "EmvError"
    return outcome


class _Exhausted(Exception):
    pass


class _Chunks:
    """A stream for the scanner driver that hands out `data` in chunks of `size`, then stops the read."""

    def __init__(self, data, size):
        self.data = data
        self.size = size
        self.at = 0

    async def readinto(self, buf):
        if self.at >= len(self.data):
            raise _Exhausted()
        n = min(len(buf), self.size, len(self.data) - self.at)
        buf[0:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


def _scanner_lines(data, size):
    import asyncio

    from firmware.drivers import scanner

    lines = []
    state = []

    async def read_all():
        s = scanner.Scanner(65536, max_line=64)  # the UART is never touched: the stream is replaced
        s._stream = _Chunks(data, size)
        state.append(s)
        try:
            while True:
                lines.append(await s.read_line())
        except _Exhausted:
            pass

    asyncio.run(read_all())
    return lines, state[0]


def t_scanner(data):
    """The scanner driver's line handling: lines, overlong lines and stray module answers."""
    from firmware.drivers import scanner

    lines, s = _scanner_lines(data, 64)
    for kind, line in lines:
        assert kind == scanner.TOO_LONG or (0 < len(line) <= 64 and 13 not in line and 10 not in line), "bad line"
    again, _ = _scanner_lines(data, 1 + split_at(data) % 7)
    assert again == lines, "scanner lines depend on how the bytes were chunked"
    return "ok" if lines else "nothing"


def t_decide(data):
    """The decision for one scanner line: an outcome for anything, never an exception."""
    from firmware import decision
    from protocol import crypto, record

    d = decision.Decider(TOKEN, sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    first = d.decide(data, 1795000000)
    if first.outcome == decision.ACCEPT and first.kind == record.KIND_QR_CPM:
        d.remember(first.token, first.atc, 1)  # what the app does once the tap is journalled
        assert d.decide(data, 1795000000).outcome == decision.ALREADY_PAID, "a payment code accepted twice"
    return "ok" if first.outcome == decision.ACCEPT else "declined %d" % first.reason


def _pump(a, b, now):
    for _ in range(8):
        for x, y in ((a, b), (b, a)):
            p = x.poll(now)
            if p is not None:
                y.feed(p, now)


def t_peer(data):
    """A host link peer after the handshake, fed frames from outside: each input frame is sealed with
    the terminal's session (so it gets past the MAC to the decoder and the selective-repeat state) unless
    it already claims to be secured; the host keeps polling and must never raise."""
    from protocol import link, peer

    term = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, DEVICE_KEY, nonce=bytes(16))
    keys = {TERMINAL: DEVICE_KEY}
    host = peer.Peer(peer.ROLE_HOST, b"HOSTHOST", keys.get, nonce=bytes(range(16)))
    now = 1000
    term.start(now)
    _pump(term, host, now)
    assert host.up() and term.up(), "handshake"
    for i in range(3):
        host.send(link.TIME, link.time_sync(i, 1795000000000, 10))
    delivered = 0
    for frame in answers_of(data):
        now += 700
        try:
            _, flags, _, _, _, _ = link.unpack_header(frame)
            if not flags & link.FLAG_SECURE:
                frame = term.session.seal(frame)
        except link.LinkError:
            pass
        delivered += len(host.feed(frame, now))
        while host.poll(now) is not None:
            pass
        host.deadline(now)
    return "ok %d" % min(delivered, 3)


_OPENER = []


def t_sealing(data):
    """The collector opening a tap's sealed card data (CPython only): the tap record, then the two key
    records the store answers with (by sequence number parity), RSA-OAEP unwrap with the vector's key."""
    from host_sim.backend import sealing
    from host_sim.fuzz import seeds
    from protocol import record

    if not _OPENER:
        _OPENER.append(sealing.Opener([seeds.seal_private_key()]))
    parts = answers_of(data)
    if len(parts) < 3:
        return "short"

    class Store:
        def record(self, terminal, seq):
            return parts[1 + seq % 2]

    try:
        rec = record.decode(parts[0])
        _OPENER[0](Store(), "5642000001000000", rec)
    except record.RecordError:
        return "RecordError"
    except sealing.SealPending:
        return "SealPending"
    except sealing.SealBroken:
        return "SealBroken"
    return "ok"


def t_qr_tool(data):
    """The host's `qr decode` (CPython only): a JSON object for any text, never an exception."""
    import json
    import os

    from host_sim.tools import qr

    text = bytes(data).decode("utf-8", "surrogateescape")  # what argv gives for bytes that are not UTF-8
    result = qr.decode(text, keys_path=os.devnull, now=1795000000)  # an empty ticket keyring
    qr.decode(text, reveal=True, keys_path=os.devnull, now=1795000000)
    json.dumps(result, ensure_ascii=False).encode("utf-8", "surrogateescape")
    assert result["valid"] or result["error"], "refused without a reason"
    return "valid" if result["valid"] else "refused"


HOST_ONLY = ("qr_tool", "sealing")  # not replayed inside MicroPython

def t_nmea(data):
    """The GPS driver's NMEA lines: a status for any bytes, the same whether they come in one read or two."""
    from firmware.drivers import gps

    whole = gps.Nmea()
    a = whole.feed(data, len(data))
    parts = gps.Nmea()
    cut = split_at(data)
    b1 = parts.feed(data[:cut], cut)
    b2 = parts.feed(data[cut:], len(data) - cut)
    assert (whole.fixes, whole.bad, whole.lat_e6, whole.lon_e6) == (parts.fixes, parts.bad, parts.lat_e6,
                                                                    parts.lon_e6), "NMEA chunking changed the fixes"
    assert a in (b1, b2) or (b2 == gps.NONE and a == b1) or a == gps.FIX, "NMEA status"
    assert -90000000 <= whole.lat_e6 <= 90000000 and -180000000 <= whole.lon_e6 <= 180000000
    return "fix" if whole.fixes else "ok"


def t_profile(data):
    """A profile bundle's body (protocol/profile.py with every registered section), and a bus fare from it."""
    from protocol import busfare, profile

    try:
        p = profile.parse(data)
    except profile.ProfileError:
        return "ProfileError"
    bus = p.get("bus")
    if bus is not None:
        n = len(bus.get("stops", ()))
        for board in (None, 0, n - 1):
            fare, _ = busfare.fare(bus, board)
            assert 0 <= fare <= busfare.MAX_FARE, "bus fare out of range"
        busfare.nearest(bus, 30000000, 120000000)
    return "ok"


TARGETS = {
    "tlv": t_tlv, "cpm": t_cpm, "mpm": t_mpm, "ticket": t_ticket, "gm65": t_gm65, "pn532": t_pn532,
    "at": t_at, "cobs": t_cobs, "frame": t_frame, "link": t_link, "session": t_session, "record": t_record,
    "bundle": t_bundle, "fleet": t_fleet, "tokenkey": t_tokenkey, "seal_open": t_seal_open, "emv": t_emv,
    "emv_fields": t_emv_fields, "scanner": t_scanner, "decide": t_decide,
    "peer": t_peer, "qr_tool": t_qr_tool, "sealing": t_sealing, "nmea": t_nmea, "profile": t_profile,
}


def run(name, data):
    """The outcome of one input on target `name`; raises on a finding."""
    return TARGETS[name](data)
