"""firmware/housekeeping.py on both runtimes: the TIME answer steps the clock only within bounds (not
before 2024, not before the newest journal record, not with a worse error bound, not from a stale
answer).  STATUS is checked end to end in tests/vboard/test_uplink_session.py."""


def body_time(answers, newest_record_time):
    from firmware import housekeeping
    from protocol import record

    class Board:
        def __init__(self):
            self.t = 1750000000
            self.steps = []

        def time_s(self):
            return self.t

        def set_time(self, s):
            self.t = s
            self.steps.append(s)

    class Journal:
        full = False
        free = 8192
        dropped = 2

        def depth(self):
            return 5

        def recent(self, n):
            return [record.encode(b"VB\x00\x00\x01\x00\x00\x00", 9, newest_record_time, 1, 200, 156, 1, 0, 1,
                                  bytes(16))]

    class Uplink:
        def __init__(self):
            self.board = Board()
            self.journal = Journal()
            self.deny = None
            self.reconnects = 3
            self.ms = 0
            self.root = "/nonexistent"  # the quarantine file is only opened when the host refuses a record

        def now(self):
            return self.ms

    up = Uplink()
    h = housekeeping.Housekeeping(up, bytes(32))
    out = []
    for sent_at, received_at, unix_ms, bound_ms in answers:
        up.ms = received_at
        h.handle({"type": "TIME", "echo": sent_at, "unix_ms": unix_ms, "bound_ms": bound_ms})
        out.append(up.board.t)
    return out, h.time_refused


def test_time_steps_only_within_bounds(runtime):
    answers = [
        (0, 100, 1_600_000_000_000, 10),  # 2020: refused
        (0, 100, 1_799_999_000_000, 10),  # before the newest record (1_800_000_000): refused
        (0, 20_000, 1_900_000_000_000, 10),  # answered 20 s later: stale, ignored
        (0, 100, 1_800_000_100_000, 10),  # fine: stepped (rtt 100 -> +50 ms)
        (200, 1_200, 1_800_000_200_000, 10),  # bound 510 ms worse than the 60 ms it has: not stepped
        (300, 310, 1_800_000_300_000, 5),  # bound 10 ms: stepped
    ]
    out, refused = runtime.run(body_time, answers, 1_800_000_000)
    assert out == [1750000000, 1750000000, 1750000000, 1800000100, 1800000100, 1800000300]
    assert refused == 2
