"""`python -m host_sim bench link --json`: goodput of the link protocol over emulated UART/cellular lines.

For each baud rate x turnaround x bit-error rate, a terminal Peer uploads EMV-QR transaction records
to a host Peer through host_sim.emulators.linkemu in simulated time, once with selective repeat (window WINDOW)
and once stop-and-wait (window 1, the baseline), with the same frames, security and seeds.

    goodput_ratio          record bytes the host received per second / (baud / 10), selective repeat
    baseline_ratio         the same for stop-and-wait
    wire_bytes_per_record  terminal-to-host bytes on the wire per record in full frames, no errors
    record_bytes           size of one record as the journal stores it

The clock starts when the session is authenticated, so the handshake is not counted.
"""

import math

from host_sim.emulators.linkemu import LinkEmu
from protocol import frame, link, peer, record, session

BAUDS = (9600, 115200)
TURNAROUNDS_MS = (10, 300)
BERS = (0.0, 1e-5, 1e-4)
WINDOW = 128
MAX_FRAME = 256
SECONDS = 20.0  # of line time per run, enough to reach the steady state
TERMINAL = b"ZF\x00\x00\x00\x00\x01\x07"
HOST = b"HOST\x00\x00\x00\x01"
KEY = bytes(range(32))
AID_UNIONPAY = bytes.fromhex("A000000333010101")


def emv_qr_record(seq, terminal=TERMINAL):
    """A realistic accepted EMV-QR tap: 44-byte header, ATC and AID extensions (58 bytes)."""
    token = bytes((seq * 37 + i * 11) & 0xFF for i in range(16))
    return record.encode(terminal, seq, 1_800_000_000 + seq * 7, record.KIND_QR_CPM, 200, 156, record.ACCEPTED,
                         record.REASON_NONE, 1, token,
                         [(record.EXT_ATC, (seq & 0xFFFF).to_bytes(2, "big")), (record.EXT_AID, AID_UNIONPAY)])


def records_per_frame(max_frame, rec_size):
    room = link.max_payload(max_frame) - link.HEADER_SIZE - session.OVERHEAD - 2
    return room // (1 + rec_size - link.TID_SIZE)


def pair(window, max_frame):
    t = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, "bench", window=window, max_frame=max_frame, rx_window=4)
    h = peer.Peer(peer.ROLE_HOST, HOST, lambda tid: KEY if tid == TERMINAL else None, "bench-host", window=8,
                  max_frame=512, rx_window=link.MAX_WINDOW)
    return t, h


def transfer(baud, turnaround_ms, ber, window, max_frame=MAX_FRAME, count=None, seed=7, drop=0.0, dup=0.0,
             reorder=0.0, limit_s=3600.0):
    """Upload `count` records; returns a dict of measurements (simulated seconds, bytes, counters)."""
    if count is None:
        count = max(40, int(SECONDS * baud / 10 / len(emv_qr_record(1))))
    emu = LinkEmu(baud, turnaround_ms, ber, drop, dup, reorder, seed)
    t, h = pair(window, max_frame)
    readers = {"a": frame.FrameReader(), "b": frame.FrameReader()}
    ends = {"a": t, "b": h}
    per_frame = records_per_frame(max_frame, len(emv_qr_record(1)))
    next_rec = 1
    received = set()
    rec_bytes = 0
    now = 0.0
    up_at = None
    done_at = None
    t.start(0)
    while now < limit_s:
        ms = int(now * 1000)
        for side, chunk in emu.receive_until(now):
            for payload in readers[side].feed(chunk):
                for msg in ends[side].feed(payload, ms):
                    if side == "b" and msg["type"] == "RECORDS":
                        for rec in msg["records"]:
                            seq = record.seq_of(rec)
                            if seq not in received:
                                received.add(seq)
                                rec_bytes += len(rec)
        if up_at is None and t.up() and h.up():
            up_at = now
        if len(received) == count:
            done_at = now
            break
        while t.can_send() and next_rec <= count:
            batch = [emv_qr_record(s) for s in range(next_rec, min(count, next_rec + per_frame - 1) + 1)]
            t.send(link.RECORDS, link.records(batch, TERMINAL), tag=next_rec + len(batch) - 1)
            next_rec += len(batch)
        wake = []
        for side, end in ends.items():
            if emu.tx_free_at(side) <= now:
                payload = end.poll(ms)
                if payload is not None:
                    emu.write(side, now, link.wire(payload))
            if emu.tx_free_at(side) > now:
                wake.append(emu.tx_free_at(side))
            else:
                d = end.deadline(ms)
                if d is not None:
                    wake.append(now + max(d, 1) / 1000.0)
        arrival = emu.next_arrival()
        if arrival is not None:
            wake.append(arrival)
        if not wake:
            break
        now = max(min(wake), now + 1e-6)
    elapsed = (done_at - up_at) if done_at is not None and up_at is not None else math.inf
    return {
        "records": len(received), "record_bytes": rec_bytes, "seconds": elapsed,
        "goodput_ratio": rec_bytes / elapsed / (baud / 10) if elapsed > 0 else 0.0,
        "wire_a": emu.lines["a"].bytes_sent, "retransmits": t.sender.retransmits,
        "mac_errors": h.errors["mac"], "crc_errors": readers["b"].errors,
    }


def wire_bytes_per_record(max_frame=MAX_FRAME):
    """Terminal-to-host wire bytes per record in a full RECORDS frame (secured), and the record size."""
    t, h = pair(WINDOW, max_frame)
    t.start(0)
    for _ in range(6):  # handshake, no losses
        for a, b in ((t, h), (h, t)):
            p = a.poll(0)
            if p is not None:
                b.feed(p, 0)
    n = records_per_frame(max_frame, len(emv_qr_record(1)))
    batch = [emv_qr_record(s) for s in range(1, n + 1)]
    t.send(link.RECORDS, link.records(batch, TERMINAL))
    wire = len(link.wire(t.poll(0)))
    assert wire <= max_frame
    return wire / n, len(batch[0])


def run(args):
    per_record, rec_size = wire_bytes_per_record(args.max_frame)
    rows = []
    for baud in BAUDS:
        for turnaround in TURNAROUNDS_MS:
            for ber in BERS:
                sr = transfer(baud, turnaround, ber, args.window, args.max_frame, seed=args.seed)
                sw = transfer(baud, turnaround, ber, 1, args.max_frame, seed=args.seed)
                rows.append({"baud": baud, "turnaround_ms": turnaround, "ber": ber,
                             "goodput_ratio": round(sr["goodput_ratio"], 3),
                             "baseline_ratio": round(sw["goodput_ratio"], 3),
                             "wire_bytes_per_record": round(per_record, 2), "record_bytes": rec_size})
    return rows


def add_arguments(parser):
    parser.add_argument("--window", type=int, default=WINDOW, help="selective-repeat window in frames (<= 128)")
    parser.add_argument("--max-frame", type=int, default=MAX_FRAME, help="terminal's maximum frame on the wire")
    parser.add_argument("--seed", type=int, default=7, help="seed of the emulated line's errors")
