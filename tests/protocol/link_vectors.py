"""Writes protocol/vectors/link.json, the link protocol's golden vectors (SPEC.md "Link protocol").

    /work/main/.venv/bin/python tests/protocol/link_vectors.py      # rewrite the file

Fixed key, nonces and records, so the file only changes when the protocol does; the tests check the
committed file on both runtimes and never regenerate it.  Bytes are hex in JSON.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from protocol import frame, link, record, session  # noqa: E402

PATH = os.path.join(ROOT, "protocol", "vectors", "link.json")
KEY = bytes(range(0x40, 0x60))
TERMINAL = bytes.fromhex("5a46000000000107")
HOST = bytes.fromhex("484f535400000001")
NONCE_T = bytes(range(0x10, 0x20))
NONCE_H = bytes(range(0xA0, 0xB0))
SEQ_HIGH = 100  # the highest record sequence number the host holds for TERMINAL (host AUTH)
TOKEN = bytes.fromhex("c0ffee00112233445566778899aabbcc")
AID = bytes.fromhex("a000000333010101")


def sample_record(seq):
    return record.encode(TERMINAL, seq, 1_800_000_000 + seq, record.KIND_QR_CPM, 200, 156, record.ACCEPTED,
                         record.REASON_NONE, 1, TOKEN, [(record.EXT_ATC, bytes([0, seq])), (record.EXT_AID, AID)])


def jsonable(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def hello_bodies():
    caps = link.CAP_RECORDS | link.CAP_CONFIG | link.CAP_TIME | link.CAP_STATUS
    return (link.hello(TERMINAL, "zhifu 0.3 micropython 1.29.0", caps | link.CAP_REFUSED, 4, 256, NONCE_T),
            link.hello(HOST, "collector 0.3", caps, 128, 488, NONCE_H))


def clear_vectors():
    ht, hh = hello_bodies()
    th = session.transcript(ht, hh)
    msgs = [
        ("hello from the terminal", link.encode(link.HELLO, ht)),
        ("hello from the host", link.encode(link.HELLO, hh)),
        ("auth from the terminal", link.encode(link.AUTH, session.proof(KEY, session.ROLE_TERMINAL, th))),
        ("auth from the host", link.encode(link.AUTH, link.auth(session.proof(KEY, session.ROLE_HOST, th, SEQ_HIGH),
                                                               SEQ_HIGH))),
        ("error: unknown terminal", link.encode(link.ERROR, link.error(link.E_UNKNOWN_TERMINAL, "unknown terminal"))),
        ("records, full form", link.encode(link.RECORDS, link.records([sample_record(1)]), 1, 0, None,
                                            link.FLAG_SEQ)),
        ("config offer", link.encode(link.CONFIG_OFFER, link.config_offer(1, 7, 1000, bytes(range(32)), b"\x5a" * 8),
                                     2, 1, None, link.FLAG_SEQ)),
        ("config chunk", link.encode(link.CONFIG_CHUNK, link.config_chunk(1, 7, 512, b"fares..."), 3, 1, None,
                                     link.FLAG_SEQ)),
        ("time", link.encode(link.TIME, link.time_sync(123456, 1_800_000_000_250, 40), 4, 1, None, link.FLAG_SEQ)),
        ("status", link.encode(link.STATUS, link.status(12, 1, -71, 3, 1, 0, 9, 86400), 5, 1, None, link.FLAG_SEQ)),
        ("status with quarantined and damaged", link.encode(link.STATUS, link.status(
            12, 1, -71, 3, 1, 0, 9, 86400, (40960, 2, 1, 7, 3, 2)), 6, 1, None, link.FLAG_SEQ)),
        ("refused: a conflict and a malformed record", link.encode(link.REFUSED, link.refused(
            [(63, 1), (0x01020304, 2)]), 7, 1, None, link.FLAG_SEQ)),
        ("error: malformed frame", link.encode(link.ERROR, link.error(link.E_MALFORMED,
                                                                      "frame 9: record 1 too short"))),
        ("error: not authenticated", link.encode(link.ERROR, link.error(link.E_NOT_AUTHENTICATED, "no session"))),
        ("ack with selective acks", link.encode(link.ACK, b"", 0, 9, (1 << 0) | (1 << 2) | (1 << 100))),
        ("bye", link.encode(link.BYE, link.bye(0))),
    ]
    return [{"name": name, "payload": p.hex(), "frame": frame.encode(p).hex(),
             "message": jsonable(link.decode(p, TERMINAL))} for name, p in msgs]


def secure_vectors():
    ht, hh = hello_bodies()
    th = session.transcript(ht, hh)
    sessions = {"t2h": session.Session(KEY, session.ROLE_TERMINAL, th),
                "h2t": session.Session(KEY, session.ROLE_HOST, th)}
    flows = [
        ("t2h", "records, terminal id elided", link.encode(
            link.RECORDS, link.records([sample_record(1), sample_record(2)], TERMINAL), 1, 0, None, link.FLAG_SEQ)),
        ("h2t", "ack of frame 1", link.encode(link.ACK, b"", 0, 1)),
        ("t2h", "status", link.encode(link.STATUS, link.status(0, 1, -80, 0, 0, 0, 0, 60), 2, 0, None,
                                      link.FLAG_SEQ)),
        ("h2t", "ack of frame 2 after a gap", link.encode(link.ACK, b"", 0, 0, 0b1)),
        ("h2t", "time", link.encode(link.TIME, link.time_sync(5000, 1_800_000_000_000, 25), 1, 2, None,
                                    link.FLAG_SEQ)),
        ("h2t", "refused", link.encode(link.REFUSED, link.refused([(2, 1)]), 2, 2, None,
                                       link.FLAG_SEQ)),
        ("t2h", "status with quarantined and damaged", link.encode(link.STATUS, link.status(
            0, 1, -80, 0, 0, 0, 0, 61, (40960, 0, 0, 0, 1, 0)), 3, 2, None, link.FLAG_SEQ)),
    ]
    out = []
    for direction, name, clear in flows:
        sealed = sessions[direction].seal(clear)
        out.append({"name": name, "direction": direction, "counter": sessions[direction].tx_counter,
                    "clear": clear.hex(), "payload": sealed.hex(), "frame": frame.encode(sealed).hex(),
                    "message": jsonable(link.decode(clear, TERMINAL))})
    return out


def invalid_vectors():
    good = link.encode(link.ACK, b"", 0, 1)
    cases = [
        ("empty", b"", link.E_MALFORMED),
        ("short header", good[:5], link.E_MALFORMED),
        ("version 2", b"\x02" + good[1:], link.E_VERSION),
        ("type 0", good[:1] + b"\x00" + good[2:], link.E_TYPE),
        ("type 99", good[:1] + b"\x63" + good[2:], link.E_TYPE),
        ("unknown flag", good[:2] + b"\x80" + good[3:], link.E_MALFORMED),
        ("sack flag without bitmap", good[:2] + b"\x02" + good[3:], link.E_MALFORMED),
        ("ack with a body", good + b"\x00", link.E_MALFORMED),
        ("records count beyond the body", link.encode(link.RECORDS, b"\x00\x02\x03abc"), link.E_MALFORMED),
        ("records mode 7", link.encode(link.RECORDS, b"\x07\x00"), link.E_MALFORMED),
        ("hello window 0", link.encode(link.HELLO, link.hello(TERMINAL, "x", 0, 0, 256, NONCE_T)), link.E_MALFORMED),
        ("hello frame 4096", link.encode(link.HELLO, link.hello(TERMINAL, "x", 0, 4, 4096, NONCE_T)),
         link.E_MALFORMED),
        ("auth of 33 bytes", link.encode(link.AUTH, bytes(33)), link.E_MALFORMED),
        ("refused without a count", link.encode(link.REFUSED, b""), link.E_MALFORMED),
        ("refused count beyond the body", link.encode(link.REFUSED, b"\x02\x01\x00\x00\x00\x01"), link.E_MALFORMED),
        ("status of 32 bytes", link.encode(link.STATUS, bytes(32)), link.E_MALFORMED),
        ("error text not utf-8", link.encode(link.ERROR, b"\x03\x02\xff\xfe"), link.E_MALFORMED),
        ("secured frame given to the clear decoder", good[:2] + b"\x01" + good[3:] + bytes(12), link.E_MALFORMED),
    ]
    return [{"name": name, "payload": p.hex(), "code": code} for name, p, code in cases]


def online_vectors():
    """ONLINE_REQUEST / ONLINE_RESULT (SPEC section 4): clear payloads, kept apart from the lists above."""
    msgs = [
        ("online request, unionpay", link.encode(link.ONLINE_REQUEST, link.online_request(
            4711, 1, 200, 156, 2000, b"6222021234567890123"), 6, 1, None, link.FLAG_SEQ)),
        ("online result, approved", link.encode(link.ONLINE_RESULT, link.online_result(
            4711, link.ONLINE_APPROVED, "", b"123456", b"000000004711"), 2, 6, None, link.FLAG_SEQ)),
        ("online result, declined", link.encode(link.ONLINE_RESULT, link.online_result(
            4712, link.ONLINE_DECLINED, "insufficient funds"), 3, 7, None, link.FLAG_SEQ)),
        ("online result, unavailable", link.encode(link.ONLINE_RESULT, link.online_result(
            4713, link.ONLINE_UNAVAILABLE, "acquirer timeout"), 4, 8, None, link.FLAG_SEQ)),
    ]
    good = msgs[0][1]
    invalid = [
        ("online request truncated", good[:7 + 13], link.E_MALFORMED),
        ("online request code not digits", link.encode(link.ONLINE_REQUEST, good[7:21] + b"62x2"), link.E_MALFORMED),
        ("online request code length beyond the body", good[:20] + b"\x30" + good[21:], link.E_MALFORMED),
        ("online result 4", link.encode(link.ONLINE_RESULT, b"\x01\x00\x00\x00\x04\x00"), link.E_MALFORMED),
        ("online approval without its reference", link.encode(link.ONLINE_RESULT, b"\x01\x00\x00\x00\x01\x00123456"),
         link.E_MALFORMED),
    ]
    return {"clear": [{"name": name, "payload": p.hex(), "frame": frame.encode(p).hex(),
                       "message": jsonable(link.decode(p, TERMINAL))} for name, p in msgs],
            "invalid": [{"name": name, "payload": p.hex(), "code": code} for name, p, code in invalid]}


def vectors():
    ht, hh = hello_bodies()
    return {
        "spec": "protocol/SPEC.md, Link protocol v1",
        "key": KEY.hex(), "terminal": TERMINAL.hex(), "seq_high": SEQ_HIGH,
        "hello_terminal": ht.hex(), "hello_host": hh.hex(),
        "transcript": session.transcript(ht, hh).hex(),
        "clear": clear_vectors(), "secure": secure_vectors(), "invalid": invalid_vectors(),
        "online": online_vectors(),
    }


if __name__ == "__main__":
    with open(PATH, "w") as f:
        json.dump(vectors(), f, indent=1)
        f.write("\n")
    print("wrote", PATH)
