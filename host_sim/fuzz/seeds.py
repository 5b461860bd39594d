"""Valid inputs per target, the mutator's starting points: golden vectors (protocol/vectors, and the
realworld set in ../shared/vectors when it is there, read in place) and encodings made by the
project's own encoders."""

import asyncio
import binascii
import json
import os

from host_sim import paths
from host_sim.fuzz import targets
from protocol import (
    bundle,
    cobs,
    cpm_tools,
    frame,
    gm65,
    link,
    mpm,
    pn532,
    record,
    seal,
    session,
    ticket,
    tlv,
    tokenkey,
)

EPOCH = 1795000000


def _json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _vectors(name):
    return _json(os.path.join(paths.ROOT, "protocol", "vectors", name)) or {}


def _realworld(name):
    return _json(os.path.join(os.path.dirname(paths.ROOT), "shared", "vectors", "realworld", name)) or {}


def _qr(kind):
    out = []
    for item in (_realworld("qr.json").get(kind) or {}).values():
        if isinstance(item, dict) and isinstance(item.get("payload"), str):
            out.append(item["payload"].encode("utf-8"))
    return out


def _link_payloads():
    v = _vectors("link.json")
    out = [bytes.fromhex(item["payload"]) for item in v.get("clear", []) + v.get("invalid", [])]
    out += [bytes.fromhex(item["clear"]) for item in v.get("secure", []) if "clear" in item]
    return out


def _records():
    token = bytes(range(16))
    return [
        record.encode(b"ZF\x00\x00\x00\x00\x01\x07", 1, EPOCH, 1, 250, 156, 1, 0, 2, token),
        record.encode(b"ZF\x00\x00\x00\x00\x01\x07", 9, EPOCH, 2, 300, 156, 2, 5, 1, token,
                      [(1, b"\xa0\x00\x00\x03\x33\x01\x01\x01"), (7, bytes(40))]),
    ]


def _tlv():
    raw = [cpm_tools.encode("6212345678901232", psn=b"\x01", aip=b"\x00\x00")]
    out = []
    for text in raw + [p.decode() for p in _qr("cpm")]:
        try:
            out.append(binascii.a2b_base64(text))
        except (ValueError, binascii.Error):
            pass
    out.append(tlv.encode(0x6F, tlv.encode(0x84, b"2PAY.SYS.DDF01") + tlv.encode(0xA5, tlv.encode(0xBF0C, tlv.encode(
        0x61, tlv.encode(0x4F, b"\xa0\x00\x00\x03\x33\x01\x01\x02") + tlv.encode(0x87, b"\x01"))))))
    return out


def _tickets():
    signed = ticket.body(ticket.VERSION, 1, 1, b"T0000001", 1, EPOCH - 60, EPOCH + 86400, 1)
    held = ticket.body(ticket.VERSION, 2, 3, b"T0000002", 4, EPOCH - 60, EPOCH + 60, 2, b"holder")
    return [ticket.encode(signed, bytes(256)).encode(), ticket.encode(held, bytes(range(256))).encode()]


def _mpm():
    made = mpm.encode([("00", "01"), ("01", "12"), ("26", mpm.tlv("00", "A000000333") + mpm.tlv("01", "12345")),
                       ("52", "4111"), ("53", "156"), ("54", "2.50"), ("58", "CN"), ("59", "SHOP"), ("60", "BEIJING")])
    return [made.encode()] + _qr("mpm")


def _gm65():
    return [gm65.read(gm65.ZONE_BAUD, 2), gm65.write(gm65.ZONE_MODE, b"\x01"), gm65.save(), gm65.answer(),
            gm65.answer(b"\x1a\x00"), gm65.answer() + b"noise" + gm65.read(gm65.ZONE_TAIL)]


def _pn532():
    return [pn532.command(0x02), pn532.response(0x02, b"\x32\x01\x06\x07"), pn532.response(0x14),
            pn532.response(0x4A, b"\x01\x01\x00\x04\x20\x04\x01\x02\x03\x04\x05\x75\x77\x81\x02\x80"),
            pn532.response(0x40, b"\x00\x6f\x10\x90\x00"), b"\x00\x00\xff\x00\xff\x00",
            pn532.encode(0xD5, bytes([0x41, 0]) + bytes(255))]


def _at():
    return [b"\r\nOK\r\n", b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n", b'+QIURC: "recv",0,5\r\nhello\r\nOK\r\n',
            b"AT+CIPSEND=0,10\r\r\n> ", b"+RECEIVE,1,4:\r\nabcd\r\n", b"+CME ERROR: 10\r\n",
            b'+QIRD: 6\r\nabcdef\r\n\r\nOK\r\n', b"\r\nRDY\r\n+CPIN: READY\r\n"]


def _session():
    term = session.Session(targets.DEVICE_KEY, session.ROLE_TERMINAL, targets.TRANSCRIPT)
    return [term.seal(p) for p in _link_payloads() if _unpacks(p)][:12]


def _unpacks(payload):
    try:
        link.unpack_header(payload)
    except link.LinkError:
        return False
    return True


def _fleet():
    v = _vectors("fleet.json")
    return [bytes.fromhex(item["bundle"]) for item in v.get("valid", []) + v.get("invalid", [])]


def _seal_open():
    v = _vectors("seal.json")
    out = []
    if v:
        out.append(b"".join(bytes.fromhex(p) for p in v.get("key_parts", [])))
    key = targets.SEAL_KEY
    out.append(seal.seal_data(7, key, 0, b"\x5a\x08\x62\x12\x34\x56\x78\x90\x12\x34", targets.TOKEN))
    out.append(b"".join(seal.key_parts(7, bytes(8), bytes(range(256)))))
    return out


def seal_private_key():
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(_vectors("seal.json")["private_key_pem"].encode(), None)


def _sealing():
    """A sealed tap and its epoch key's two records (protocol/vectors/seal.json), framed like the card answers."""
    v = _vectors("seal.json")
    if not v:
        return []
    out = []
    keys = [bytes.fromhex(r) for r in v["key_records"]]
    for item in v["sealed"][:3]:
        token = bytes.fromhex(item["token"])
        tap = record.encode(bytes.fromhex(v["terminal"]), 200, int(v["time"]), record.KIND_QR_CPM, 250, 156, 1, 0, 1,
                            token, [(record.EXT_EMV_SEALED, bytes.fromhex(item["sealed"]))])
        parts = [tap] + sorted(keys, key=lambda r: record.decode(r)["seq"] % 2)
        out.append(b"".join(len(p).to_bytes(2, "big") + p for p in parts))
    return out


def _emv():
    """Each emulated card profile's answers, in the order the terminal's read asked for them."""
    from firmware import emv
    from host_sim.emulators import emv_card

    out = []
    for name in sorted(emv_card.PROFILES):
        card = emv_card.Card(name)
        answers = []

        async def exchange(apdu, card=card, answers=answers):
            answer = bytes(card.respond(bytes(apdu)))
            answers.append(answer)
            return answer

        try:
            asyncio.run(emv.read(exchange, emv.terminal_data(250, b"\x12\x34\x56\x78", EPOCH)))
        except emv.EmvError:
            pass
        out.append(b"".join(len(a).to_bytes(2, "big") + a for a in answers))
    return out


def _peer():
    """Link payloads a terminal sends once up, framed like the scripted card answers (2-byte lengths)."""
    sent = [p for p in _link_payloads() if _unpacks(p) and p[1] not in (link.HELLO, link.AUTH)]
    sent += [link.encode(link.ACK, b"", 0, 1), link.encode(link.ACK, b"", 0, 0, (1 << 128) - 1)]
    return [b"".join(len(p).to_bytes(2, "big") + p for p in sent[i:i + 4]) for i in range(0, len(sent), 4)]


def _emv_fields():
    return [b"\x08\x01\x01\x00\x10\x01\x03\x01", bytes.fromhex("6212345678901234D30122200000000000"),
            b"\x9f\x02\x06\x9f\x37\x04\x95\x05\x5f\x2a\x02"]


def _scanner():
    codes = [c + b"\r\n" for c in SEEDS["cpm"]()[:2] + _tickets()[:1]]
    return codes + [gm65.answer() + b"CODE\r", b"\x02\x00\x00\x01\x00\x00x\n", b"A" * 80 + b"\rB\n"]


def _decide():
    return SEEDS["cpm"]() + _tickets() + [b"hello"]


SEEDS = {
    "tlv": _tlv,
    "cpm": lambda: [cpm_tools.encode("6212345678901232").encode(),
                    cpm_tools.encode("6212345678901232", expiry="2912", psn=b"\x01", aip=b"\x00\x00").encode()]
    + _qr("cpm"),
    "mpm": _mpm,
    "ticket": _tickets,
    "gm65": _gm65,
    "pn532": _pn532,
    "at": _at,
    "cobs": lambda: [cobs.encode(b"\x00\x01\x02hello\x00"), cobs.encode(bytes(300)), cobs.encode(bytes(range(1, 256)))],
    "frame": lambda: [frame.encode(p) for p in _link_payloads()[:8]] + [frame.encode(b"x") * 2],
    "link": _link_payloads,
    "session": _session,
    "record": _records,
    "bundle": lambda: [bundle.deny_delta(1, 2, [bytes(16)]),
                       bundle.deny_delta(0, 7, [bytes(range(16))] * 2, [b"z" * 16])],
    "fleet": _fleet,
    "tokenkey": lambda: [tokenkey.make(targets.DEVICE_KEY, 3, bytes(range(32)), bytes(12))],
    "seal_open": _seal_open,
    "emv": _emv,
    "emv_fields": _emv_fields,
    "scanner": _scanner,
    "decide": _decide,
    "peer": _peer,
    "qr_tool": lambda: _decide() + _mpm(),
    "sealing": _sealing,
    "nmea": lambda: [_gps().fix_sentences(30274100, 120155000, 1_800_000_000),
                     _gps().fix_sentences(-33868800, -70669300, 1_800_000_000, fix=False),
                     _gps().fix_sentences(1, 2, 1_800_000_000, bad=True)],
    "profile": lambda: [b'{"profile": "bus", "group": "route-7", "bus": {"fare": "stage", "default_fen": 300, '
                        b'"fares_fen": [100, 200], "stops": [{"stage": 0, "lat_e6": 30000000, "lon_e6": 120000000}, '
                        b'{"stage": 1}], "transfer": {"window_min": 60, "discount_fen": 100}, "daily_cap_rides": 3}}',
                        b'{"profile": "scenic", "group": "lake"}'],
}


def _gps():
    from host_sim.emulators import gps

    return gps


def seeds(name):
    """The seed inputs of a target (at least one)."""
    got = [bytes(s) for s in SEEDS[name]() if s]
    return got or [b"\x00"]


def dictionary(name):
    """Tokens worth splicing in for a target: tags, markers, keywords."""
    common = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x81", b"\x82\x01\x00"]
    extra = {
        "at": [b"\r\n", b"OK", b"ERROR", b"+QIURC: ", b'"recv"', b"+RECEIVE,", b"+QIRD: ", b",", b"> ", b"+CME ERROR:"],
        "mpm": [b"6304", b"0002", b"01", b"26", b"99"],
        "cpm": [b"hQVDUFYwMQ", b"=", b"/", b"+"],
        "decide": [b"hQVDUFYwMQ", b"ZT1.", b"="],
        "qr_tool": [b"hQVDUFYwMQ", b"ZT1.", b"0002", b"6304", b"\xff", b"\xed\xa0\x80"],
        "scanner": [b"\r", b"\n", b"\r\n", b"\x02\x00\x00\x01\x00"],
        "ticket": [ticket.PREFIX.encode(), b"-", b"_"],
        "pn532": [b"\x00\x00\xff", b"\xd5", b"\xd4", b"\x00\xff\x00\xff\x00"],
        "gm65": [b"\x02\x00", b"\x7e\x00", b"\xab\xcd"],
        "nmea": [b"$GPRMC,", b"$GNGGA,", b",A,", b",V,", b",N,", b",E,", b"*", b"\r\n"],
        "profile": [b'"bus"', b'"fare"', b'"stage"', b'"zone"', b'"stops"', b'"fares_fen"', b"[", b"{"],
        "emv": [b"\x90\x00", b"\x61\x00", b"\x6a\x82", b"\x70", b"\x77", b"\x94\x04"],
    }
    return common + extra.get(name, [])

