"""protocol/peer.py on both runtimes: handshake, upload, refusals (unknown terminal, wrong key), frames
from an earlier session, altered frames, garbage floods, and a capture with no record field in clear."""

from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_session(key_t, key_h, n_records, garbage, nonce_seed, replay_stream, flip):
    """Terminal and host Peers over an in-memory wire of frames, with `garbage` bytes in front of every
    terminal frame.  `replay_stream`: bytes injected into the host after the handshake (an old capture).
    `flip`: (frame index, byte index) of one terminal frame to damage once.  Returns what happened."""
    from protocol import frame, link, peer, record

    T = b"ZF\x00\x00\x00\x00\x00\x09"
    t = peer.Peer(peer.ROLE_TERMINAL, T, key_t, "fw", window=4, max_frame=256, rx_window=4,
                  nonce=bytes([nonce_seed]) * 16)
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key_h if tid == T else None, "host", window=4,
                  max_frame=512, rx_window=16, nonce=bytes([nonce_seed + 1]) * 16)
    _rt, rh = frame.FrameReader(), frame.FrameReader()
    recs = [record.encode(T, i, 1800000000 + i, 1, 200, 156, 1, 0, 1, bytes([0xA5, i]) * 8, [(1, bytes([0, i]))])
            for i in range(1, n_records + 1)]
    stored = {}
    capture = bytearray()
    now = 0
    sent_frames = 0
    injected = False
    errors = []
    t.start(now)
    nxt = 0
    while now < 60000:
        if t.up() and not injected:
            injected = True
            for p in rh.feed(replay_stream):
                for m in h.feed(p, now):
                    errors.append(("replayed delivered", m["type"]))
        while nxt < len(recs) and t.can_send():
            t.send(link.RECORDS, link.records(recs[nxt:nxt + 2], T), tag=nxt + 2)
            nxt += 2
        p = t.poll(now)
        if p is not None:
            wire = bytearray(link.wire(p))
            if flip is not None and sent_frames == flip[0]:
                wire[1 + flip[1] % (len(wire) - 2)] ^= 0x5A
            sent_frames += 1
            wire = garbage + bytes(wire)
            capture += wire
            for q in rh.feed(wire):
                for m in h.feed(q, now):
                    if m["type"] == "RECORDS":
                        for r in m["records"]:
                            s = record.seq_of(r)
                            stored[s] = stored.get(s, 0) + 1
                    elif m["type"] == "ERROR":
                        errors.append(("host got error", m["code"]))
        q = h.poll(now)
        if q is not None:
            for m in t.feed(q, now):
                if m["type"] == "ERROR":
                    errors.append(("error", m["code"]))
            if not t.up() and t.state == peer.IDLE:
                break
        if t.up() and nxt >= len(recs) and t.sender.in_flight() == 0:
            break
        now += 10
    return (t.state, h.state, sorted(stored), max(stored.values()) if stored else 0, errors,
            t.sender.delivered_tag, h.errors, bytes(capture))


# --- tests ---------------------------------------------------------------------------------------

KEY = bytes(range(32))


def test_upload_over_an_authenticated_session(runtime):
    t, h, stored, most, errors, tag, herr, capture = runtime.run(body_session, KEY, KEY, 9, b"", 1, b"", None)
    assert (t, h) == (3, 3)
    assert stored == list(range(1, 10)) and most == 1 and errors == []
    assert tag == 10  # the last frame's tag: records up to here are acknowledged
    assert herr == {"malformed": 0, "mac": 0, "replay": 0, "duplicate": 0, "refused": 0}
    # nothing of a record is readable on the wire: tokens, sequence/time, the terminal id only in HELLO
    for i in range(1, 10):
        assert bytes([0xA5, i]) * 8 not in capture
        assert (1800000000 + i).to_bytes(4, "little") not in capture
    assert capture.count(b"ZF\x00\x00\x00\x00\x00\x09") <= 1


def test_unknown_terminal_and_wrong_key_are_refused_and_nothing_is_stored(runtime):
    t, h, stored, most, errors, tag, herr, _ = runtime.run(body_session, KEY, bytes(32), 4, b"", 1, b"", None)
    assert stored == [] and h != 3 and t != 3
    assert ("error", 5) in errors and herr["refused"] >= 1  # E_AUTH_FAILED


def test_frames_of_an_earlier_session_are_rejected_and_counted(runtime):
    old = runtime.run(body_session, KEY, KEY, 4, b"", 1, b"", None)[7]
    t, h, stored, most, errors, tag, herr, _ = runtime.run(body_session, KEY, KEY, 4, b"", 7, old, None)
    # The old clear AUTH fails against the host's fresh nonce (ERROR 5, which the authenticated terminal
    # ignores); the old secured frames fail their MAC; nothing of them is delivered.
    assert [e for e in errors if e[0] != "error"] == [] and set(errors) <= {("error", 5)}
    assert stored == [1, 2, 3, 4] and most == 1 and (t, h) == (3, 3)
    assert herr["mac"] == 2 and herr["refused"] == 1  # its two RECORDS frames; its AUTH


def test_a_frame_damaged_on_the_wire_is_never_delivered_and_is_resent(runtime):
    cases = [(KEY, KEY, 6, b"", 2, b"", (f, i)) for f in (2, 3, 4) for i in (0, 3, 9, 17, 40)]
    for _t, _h, stored, most, errors, _tag, _herr, _ in runtime.run_many(body_session, cases):
        assert stored == list(range(1, 7)) and most == 1 and errors == []


def test_a_flood_of_garbage_does_not_starve_valid_frames(runtime):
    floods = draw_examples(st.binary(min_size=100, max_size=600), 6)
    floods.append(bytes(range(1, 256)) * 2)  # no delimiter at all: one overlong run per frame
    cases = [(KEY, KEY, 6, g, 3, b"", None) for g in floods]
    for t, h, stored, most, errors, _tag, _herr, _ in runtime.run_many(body_session, cases):
        assert (t, h) == (3, 3)
        assert stored == list(range(1, 7)) and most == 1 and errors == []


def body_hello_of_another_version(payload):
    from protocol import link, peer

    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: None, "host")
    assert h.feed(payload, 0) == []
    reply = h.poll(0)
    return h.errors["malformed"], None if reply is None else link.decode(reply)


def test_a_hello_of_another_version_gets_error_1_and_other_garbage_no_answer(runtime):
    from protocol import link

    hello = link.encode(link.HELLO, link.hello(b"ZF000001", "fw", 0, 4, 256, bytes(16)))
    malformed, reply = runtime.run(body_hello_of_another_version, b"\x02" + hello[1:])
    assert malformed == 1 and (reply["type"], reply["code"]) == ("ERROR", link.E_VERSION)
    malformed, reply = runtime.run(body_hello_of_another_version, b"\x02" + hello[1:2] + b"\x00")
    assert malformed == 1 and reply is None  # too short to be a header at all
    malformed, reply = runtime.run(body_hello_of_another_version, hello[:1] + b"\x63" + hello[2:])
    assert malformed == 1 and reply is None


def body_heap_after_records(batches):
    """Upload `batches` frames of 4 records through a terminal Peer and a host Peer in memory; the heap
    in use (after a collection) at a quarter of the way and at the end (CPython: allocated blocks x 32)."""
    import gc
    import sys

    def used():
        gc.collect()
        return gc.mem_alloc() if hasattr(gc, "mem_alloc") else sys.getallocatedblocks() * 32

    from protocol import link, peer, record

    T = b"ZF\x00\x00\x00\x00\x00\x09"
    key = bytes(32)
    t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw", window=8, max_frame=256, rx_window=4, nonce=bytes(16))
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key, "host", window=4, max_frame=512, rx_window=16,
                  nonce=bytes([1]) * 16)
    t.start(0)
    sent = 0
    got = 0
    marks = []
    now = 0
    while got < 4 * batches and now < 10000000:
        now += 10
        if t.up() and sent < batches and t.can_send():
            recs = [record.encode(T, 4 * sent + i, 1800000000, 1, 200, 156, 1, 0, 1, bytes(16)) for i in range(4)]
            t.send(link.RECORDS, link.records(recs, T), 4 * sent + 3)
            sent += 1
        p = t.poll(now)
        if p is not None:
            for m in h.feed(p, now):
                got += len(m["records"])
        q = h.poll(now)
        if q is not None:
            t.feed(q, now)
        if got in (batches, 4 * batches) and len(marks) < (1 if got == batches else 2):
            marks.append(used())
    return got, marks


def test_ram_does_not_grow_with_the_number_of_records_sent(runtime):
    got, (quarter, end) = runtime.run(body_heap_after_records, 400)
    assert got == 1600
    assert end - quarter < 2048, (quarter, end)  # a few counters, not per-record state


def body_capabilities(host_caps, terminal_caps):
    """Handshake two Peers announcing the given caps; which sequenced types each side's send() takes."""
    from protocol import frame, link, peer

    key = bytes(range(32))
    T = b"ZF\x00\x00\x00\x00\x00\x09"
    t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw", caps=terminal_caps)
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key, "host", caps=host_caps)
    h.seq_floor = lambda tid: 77
    rt, rh = frame.FrameReader(), frame.FrameReader()
    t.start(0)
    for _ in range(10):
        for src, dst, reader in ((t, h, rh), (h, t, rt)):
            p = src.poll(0)
            if p is not None:
                for q in reader.feed(link.wire(p)):
                    dst.feed(q, 0)
    out = []
    for side in (t, h):
        takes = []
        for mtype in (link.RECORDS, link.CONFIG_OFFER, link.TIME, link.STATUS, link.REFUSED):
            try:
                side.send(mtype, b"\x00")
                takes.append(link.NAMES[mtype])
            except ValueError:
                pass
        out.append(takes)
    return t.up(), h.up(), t.host_seq_high, out


def test_send_refuses_a_type_the_peer_did_not_announce(runtime):
    from protocol import link, peer

    up_t, up_h, floor, (t_takes, h_takes) = runtime.run(body_capabilities, link.CAP_RECORDS,
                                                         link.CAP_STATUS | link.CAP_REFUSED)
    assert up_t and up_h and floor == 77  # seq_high of the host's AUTH reached the terminal
    assert t_takes == ["RECORDS"]  # the host announced RECORDS only
    assert h_takes == ["STATUS", "REFUSED"]
    _, _, _, (t_all, h_all) = runtime.run(body_capabilities, peer.CAPS, peer.CAPS | link.CAP_REFUSED)
    assert t_all == ["RECORDS", "CONFIG_OFFER", "TIME", "STATUS"] and "REFUSED" in h_all


def body_altered_floor():
    """A host AUTH whose seq_high was altered on the way: the terminal refuses it."""
    from protocol import frame, link, peer

    key = bytes(range(32))
    T = b"ZF\x00\x00\x00\x00\x00\x09"
    t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw")
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key, "host")
    h.seq_floor = lambda tid: 5
    rt, rh = frame.FrameReader(), frame.FrameReader()
    t.start(0)
    for _ in range(10):
        p = t.poll(0)
        if p is not None:
            for q in rh.feed(link.wire(p)):
                h.feed(q, 0)
        p = h.poll(0)
        if p is not None:
            if p[1] == link.AUTH:
                p = p[:-4] + b"\xff\xff\xff\x7f"
            for q in rt.feed(link.wire(p)):
                t.feed(q, 0)
    return t.up(), t.host_seq_high, t.errors["refused"]


def test_an_altered_seq_high_fails_the_hosts_proof(runtime):
    up, floor, refused = runtime.run(body_altered_floor)
    assert not up and floor is None and refused >= 1


def body_reset(key):
    """A terminal Peer uploads to one host Peer, loses the link with frames in flight, is reset and uploads
    again to a fresh host Peer (a reconnect).  Returns what the second session saw and what was reused."""
    import os

    from protocol import frame, link, peer, record

    T = b"ZF\x00\x00\x00\x00\x00\x09"
    t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw", window=4, max_frame=256, rx_window=4)
    slots = [id(b) for b in t.sender._body]

    def host():
        return peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key if tid == T else None, "host", window=4,
                         max_frame=512, rx_window=16, nonce=os.urandom(16))

    def run(h, first, count, deliver_until, now):
        rh = frame.FrameReader()
        stored = []
        hellos = []
        nxt = first
        while now < 100000:
            while nxt < first + count and t.can_send():
                t.send(link.RECORDS, link.records([record.encode(T, nxt, 1800000000, 1, 200, 156, 1, 0, 1,
                                                                 bytes(16))], T), tag=nxt)
                nxt += 1
            p = t.poll(now)
            if p is not None:
                if p[1] == link.HELLO:
                    hellos.append(bytes(p))
                _, flags, seq, _, _, _ = link.unpack_header(p)
                if not flags & link.FLAG_SEQ or seq <= deliver_until:
                    for q in rh.feed(link.wire(p)):
                        for m in h.feed(q, now):
                            if m["type"] == "RECORDS":
                                stored.extend(record.seq_of(r) for r in m["records"])
            q = h.poll(now)
            if q is not None:
                t.feed(q, now)
            if t.up() and nxt >= first + count and t.sender.delivered_tag >= min(deliver_until, first + count - 1):
                break
            now += 10
        return stored, hellos, now

    t.start(0)
    stored1, hellos1, now = run(host(), 1, 6, 3, 0)  # frames after the third never reach the host
    in_flight = t.sender.in_flight()
    t.feed(b"\x01\x02garbage", now)  # counted as malformed in the first session
    t.reset(now)
    fresh = [t.state, t.session is None, t.sender.in_flight(), t.sender.next_seq, t.receiver.cum,
             sum(t.errors.values())]
    stored2, hellos2, _ = run(host(), 1, 6, 99, now)
    same_slots = [id(b) for b in t.sender._body] == slots
    return [sorted(set(stored1)), in_flight, fresh, sorted(set(stored2)), t.sender.delivered_tag, same_slots,
            hellos1[0] != hellos2[0]]


def test_a_reset_peer_starts_a_clean_session_on_the_same_slot_buffers(runtime):
    first, in_flight, fresh, stored, tag, same_slots, new_hello = runtime.run(body_reset, KEY)
    assert first == [1, 2, 3] and in_flight > 0  # the first session ended with frames unacknowledged
    assert fresh == [1, True, 0, 1, 0, 0]  # HELLO_SENT, no session, empty windows, counters zeroed
    assert stored == [1, 2, 3, 4, 5, 6] and tag == 6
    assert same_slots and new_hello  # no new slot buffers; a fresh nonce in the new HELLO


def body_host_frames_across_a_terminal_restart(key):
    """One host Peer (a serial collector keeps it) and a terminal that restarts while the host's sequenced
    frames (TIME answers) are unacknowledged: the next session starts its numbers at 1 again, so the
    terminal's new receiver takes the host's frames and the host's window drains (SPEC section 2)."""
    from protocol import link, peer

    T = b"ZF\x00\x00\x00\x00\x00\x09"
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key if tid == T else None, "host", window=8,
                  max_frame=488, rx_window=16)

    def session(deliver_to_terminal, sends, now):
        t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw", window=4, max_frame=288, rx_window=4)
        t.start(now)
        got = []
        for _ in range(2000):
            now += 10
            p = t.poll(now)
            if p is not None:
                h.feed(p, now)
            while sends and t.up() and h.can_send():  # answers within this session
                h.send(link.TIME, link.time_sync(sends.pop(0), 1800000000000, 20))
            q = h.poll(now)
            if q is not None and (deliver_to_terminal or q[1] in (link.HELLO, link.AUTH)):
                got.extend(m["type"] for m in t.feed(q, now))
        return got, now

    _, now = session(True, [1, 2, 3, 4], 0)  # answered and acknowledged: the host's numbers reach 4
    _, now = session(False, [5, 6, 7, 8], now)  # the terminal loses power before these answers arrive
    got, now = session(True, [9, 10], now)
    return got, h.sender.in_flight(), h.can_send()


def test_a_new_session_numbers_the_hosts_frames_from_one_so_a_restarted_terminal_takes_them(runtime):
    got, in_flight, can_send = runtime.run(body_host_frames_across_a_terminal_restart, bytes(range(32)))
    assert got == ["TIME", "TIME"] and in_flight == 0 and can_send


def body_poll_into_matches_poll(key):
    """Two identical terminal/host pairs (fixed nonces) upload the same records; one terminal sends with
    poll(), the other with poll_into() into one reused buffer: the same payloads, byte for byte."""
    from protocol import frame, link, peer, record

    T = b"ZF\x00\x00\x00\x00\x00\x09"

    def pair():
        t = peer.Peer(peer.ROLE_TERMINAL, T, key, "fw", window=4, max_frame=288, rx_window=4, nonce=b"\x01" * 16)
        h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key if tid == T else None, "host", window=4,
                      max_frame=488, rx_window=16, nonce=b"\x02" * 16)
        return t, h

    out = bytearray(frame.MAX_PAYLOAD)
    sent = ([], [])
    for k, (t, h) in enumerate((pair(), pair())):
        t.start(0)
        nxt = 1
        for now in range(0, 3000, 10):
            while nxt <= 12 and t.can_send():
                rec = record.encode(T, nxt, 1800000000, 1, 200, 156, 1, 0, 1, bytes(16))
                t.send(link.RECORDS, link.records([rec], T), tag=nxt)
                nxt += 1
            if k == 0:
                p = t.poll(now)
            else:
                n = t.poll_into(now, out)
                p = bytes(out[:n]) if n else None
            if p is not None:
                sent[k].append(p)
                h.feed(p, now)
            q = h.poll(now)
            if q is not None:
                t.feed(q, now)
    return sent[0] == sent[1], len(sent[0])


def test_poll_into_sends_what_poll_sends(runtime):
    same, count = runtime.run(body_poll_into_matches_poll, bytes(range(32)))
    assert same and count > 12
