"""protocol/selective_repeat.py on both runtimes: each frame delivered exactly once whatever the channel
does (loss, duplication, reordering), SACK bitmaps that match what arrived, window and u16 wrap-around."""

from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_receiver(window, arrivals):
    """Feed wire sequence numbers; returns (delivered, cum, sack, duplicates, out_of_window)."""
    from protocol.selective_repeat import Receiver

    r = Receiver(window)
    delivered = []
    for s in arrivals:
        if r.accept(s & 0xFFFF):
            delivered.append(s)
    ack, sack = r.ack_fields()
    return delivered, ack, sack, r.duplicates, r.out_of_window


def body_transfer(window, count, loss, dup, reorder, seed, start):
    """Sender -> lossy channel -> Receiver -> lossy ack channel, in simulated ms with a tiny LCG."""
    from protocol.selective_repeat import Receiver, Sender

    state = [seed]

    def rnd():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] / 2147483648.0

    s = Sender(window, 8)
    r = Receiver(64)
    s.next_seq = s.base = start
    r.cum = start - 1
    queued = delivered = 0
    got = {}
    flight = []  # (arrival ms, kind, seq or ack fields)
    now = 0
    max_in_flight = 0
    while (delivered < count or s.in_flight()) and now < 600000:
        while queued < count and s.can_queue():
            s.queue(3, bytes([queued & 0xFF]) * 8, tag=queued)
            queued += 1
        max_in_flight = max(max_in_flight, s.in_flight())
        i = s.poll(now)
        if i >= 0:
            mtype, seq, body = s.frame(i)
            s.mark_sent(i, now)
            if rnd() >= loss:
                delay = 50 + (int(rnd() * 200) if rnd() < reorder else 0)
                flight.append((now + delay, 0, seq & 0xFFFF, bytes(body)))
                if rnd() < dup:
                    flight.append((now + delay + 5, 0, seq & 0xFFFF, bytes(body)))
        flight.sort()
        while flight and flight[0][0] <= now:
            _, kind, a, b = flight.pop(0)
            if kind == 0:
                if r.accept(a):
                    got[b[0]] = got.get(b[0], 0) + 1
                    delivered += 1
                if rnd() >= loss:
                    ack, sack = r.ack_fields()
                    flight.append((now + 50, 1, ack, sack))
            else:
                s.on_ack(a, b, now)
        now += 10
    counts = sorted(set(got.values()))
    return delivered, counts, max_in_flight, s.retransmits, s.delivered_tag, s.base - start


# --- tests ---------------------------------------------------------------------------------------


def test_in_order_arrivals_advance_the_cumulative_ack(runtime):
    assert runtime.run(body_receiver, 8, [1, 2, 3]) == ([1, 2, 3], 3, 0, 0, 0)


def test_gaps_show_in_the_sack_bitmap_and_fill_later(runtime):
    delivered, ack, sack, dups, oow = runtime.run(body_receiver, 8, [1, 3, 5, 3, 1])
    assert (delivered, ack, sack, dups) == ([1, 3, 5], 1, 0b101, 2)
    assert runtime.run(body_receiver, 8, [1, 3, 5, 2, 4])[:3] == ([1, 3, 5, 2, 4], 5, 0)


def test_frames_beyond_the_window_are_dropped_and_counted(runtime):
    assert runtime.run(body_receiver, 4, [1, 6, 5, 30000]) == ([1, 5], 1, 0b100, 0, 2)


def test_receiver_delivers_each_sequence_number_once_in_any_order(runtime):
    examples = draw_examples(st.lists(st.integers(1, 40), max_size=120), 60)
    got = runtime.run_many(body_receiver, [(64, a) for a in examples])
    for arrivals, (delivered, ack, sack, dups, _oow) in zip(examples, got):
        assert sorted(delivered) == sorted(set(arrivals))
        assert dups == len(arrivals) - len(set(arrivals))
        have = set(arrivals)
        cum = 0
        while cum + 1 in have:
            cum += 1
        assert ack == cum
        assert sack == sum(1 << (s - cum - 2) for s in have if s > cum + 1)


def test_lossy_duplicating_reordering_channel_delivers_everything_exactly_once(runtime):
    cases = [(8, 60, 0.0, 0.0, 0.0, 1, 1), (8, 60, 0.2, 0.1, 0.3, 2, 1), (16, 80, 0.3, 0.2, 0.5, 3, 1),
             (1, 20, 0.2, 0.0, 0.0, 4, 1), (8, 60, 0.2, 0.1, 0.3, 5, 65500)]  # the last wraps the u16
    got = runtime.run_many(body_transfer, cases)
    for (window, count, loss, *_), (delivered, counts, max_in_flight, retransmits, tag, advanced) in zip(cases, got):
        assert delivered == count and counts == [1]
        assert max_in_flight <= window
        assert tag == count - 1 and advanced == count
        assert (retransmits > 0) == (loss > 0)
