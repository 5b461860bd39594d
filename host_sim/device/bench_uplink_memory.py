"""`bench uplink-memory` inside MicroPython: bytes the terminal allocates per frame sent and received.

argv: frames, then the transports ("serial", "simcom", "quectel").  A terminal Peer and a host Peer
shake hands in memory; then `frames` RECORDS frames go terminal -> host and every host reply (ACK)
comes back.  Counted with micropython.mem_total() (bytes allocated, cumulative) around the terminal's
side only: sending is Peer.send + Peer.poll + frame.wire_into (+ the modem's send command), receiving is the
transport's receive path + FrameReader.feed + Peer.feed.  The modem receive path is the driver's: the
AT stream of a pull read (+CIPRXGET: 2 / +QIRD header, the bytes, OK) through protocol.at.AtReader
into the driver's RingBuffer and out with readinto, as firmware/drivers/modem.py does.  The heap
after gc.collect() is taken before the frames, after the first tenth (warm) and after all."""

import gc
import sys

import micropython

from firmware.ringbuf import RingBuffer
from host_sim.device import results
from protocol import at, cobs, frame, link, peer, record

KEY = bytes(range(32))
TERMINAL = b"T0000001"
MAX_FRAME = 288  # firmware/uplink.py
WINDOW = 8
READ = {"simcom": (b"+CIPRXGET: 2,0,%d,0\r\n", b"AT+CIPSEND=0,%d\r", b"AT+CIPRXGET=2,0,%d"),
        "quectel": (b"+QIRD: %d\r\n", b"AT+QISEND=0,%d\r", b"AT+QIRD=0,%d")}


def pair():
    t = peer.Peer(peer.ROLE_TERMINAL, TERMINAL, KEY, window=WINDOW, max_frame=MAX_FRAME, rx_window=4)
    h = peer.Peer(peer.ROLE_HOST, bytes(8), lambda ident: KEY, window=16, max_frame=512)
    t.start(0)
    for _ in range(8):
        for a, b in ((t, h), (h, t)):
            while True:
                p = a.poll(0)
                if p is None:
                    break
                b.feed(p, 0)
    assert t.up() and h.up()
    return t, h


def batch():
    recs = [record.encode(TERMINAL, i + 1, 1700000000 + i, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0,
                          3, bytes(16)) for i in range(4)]
    buf = bytearray(link.max_payload(MAX_FRAME))
    return memoryview(buf)[:link.records_into(buf, 0, recs, TERMINAL)]


def run(transport, n):
    t, h = pair()
    body = batch()
    reader = frame.FrameReader()
    host_reader = frame.FrameReader()
    modem = READ.get(transport)
    at_reader = at.AtReader(push=False)
    ring = RingBuffer(2048)
    buf = bytearray(128)
    out = bytearray(2 + cobs.max_encoded_len(frame.MAX_PAYLOAD + 4))
    scratch = bytearray(frame.MAX_PAYLOAD + 4)
    sealed = bytearray(frame.MAX_PAYLOAD)
    sent = received = frames_in = 0
    cmd = b""
    now = 1
    gc.collect()
    before = gc.mem_alloc()
    warm = None
    for i in range(n):
        if i == n // 10:  # caches and counters have reached their size: from here the heap must stay flat
            gc.collect()
            warm = gc.mem_alloc()
        now += 10
        m0 = micropython.mem_total()
        t.send(link.RECORDS, body, i + 1)
        size = t.poll_into(now, sealed)  # as firmware/uplink.py sends: sealed in place, framed into a buffer
        wire = memoryview(out)[:frame.wire_into(memoryview(sealed)[:size], out, scratch)]
        if modem is not None:
            cmd = modem[1] % len(wire)  # the send command the driver writes before the bytes
        sent += micropython.mem_total() - m0
        for p in host_reader.feed(wire):  # the host's side: not counted
            h.feed(p, now)
        reply = bytearray()
        while True:
            p = h.poll(now)
            if p is None:
                break
            reply += link.wire(p)
        if modem is not None:
            reply = modem[0] % len(reply) + reply + b"\r\nOK\r\n"
        m0 = micropython.mem_total()
        if modem is not None:
            cmd = modem[2] % ring.room()  # the read command
            for ev in at_reader.feed(reply):
                if ev[0] == at.DATA:
                    ring.put(ev[2])
            while len(ring):
                k = ring.readinto(buf)
                for p in reader.feed(memoryview(buf)[:k]):
                    t.feed(p, now)
                    frames_in += 1
        else:
            mv = memoryview(reply)
            for j in range(0, len(reply), len(buf)):
                k = min(len(buf), len(reply) - j)
                buf[:k] = mv[j:j + k]
                for p in reader.feed(memoryview(buf)[:k]):
                    t.feed(p, now)
                    frames_in += 1
        received += micropython.mem_total() - m0
    gc.collect()
    after = gc.mem_alloc()
    assert t.sender.delivered_tag == n and cmd is not None, "frames lost in the bench"
    return {"frames": n, "frames_received": frames_in, "alloc_per_frame_sent": sent // n,
            "alloc_per_frame_received": received // max(1, frames_in), "heap_before": before, "heap_warm": warm,
            "heap_after": after}


def main(n, transports):
    out = {}
    out["runtime"] = results.runtime_name()
    for name in transports:
        out[name] = run(name, n)
    results.report(out)


main(int(sys.argv[1]), sys.argv[2:])
