"""A link emulator in simulated time: a byte pipe between endpoints "a" and "b", deterministic and fast.

Each direction is a line of `baud` bits/s carrying 8N1 bytes, so baud/10 bytes/s; a write starts when
the line is free and its last byte arrives `turnaround_ms` after it left (the latency of a modem, a
radio's turnaround or a cellular path).  Impairments, all from one seeded random generator:

    ber      each data bit flips with this probability (errors land anywhere: payload, CRC, delimiter)
    drop     a write is lost whole
    dup      a write arrives twice
    reorder  a write is held back by 1-3 of its own durations plus up to 50 ms, so later writes overtake it

Nothing sleeps: callers ask for the next arrival time and advance their own clock to it (see
host_sim/bench/link.py), so a minute of 9600-baud traffic is simulated in a fraction of a second.
"""

import heapq
import math
import random


class Line:
    """One direction of the pipe."""

    def __init__(self, baud, turnaround_ms, ber, drop, dup, reorder, rng):
        self.byte_s = 10.0 / baud
        self.latency = turnaround_ms / 1000.0
        self.ber = ber
        self.drop = drop
        self.dup = dup
        self.reorder = reorder
        self.rng = rng
        self.free_at = 0.0
        self.bytes_sent = 0
        self.bits_flipped = 0
        self._gap = self._next_gap()

    def _next_gap(self):
        """Bits until the next error: geometric, so a long stream costs one draw per error."""
        if self.ber <= 0:
            return math.inf
        u = self.rng.random()
        return int(math.log(1.0 - u) / math.log(1.0 - self.ber))

    def _corrupt(self, data):
        bits = 8 * len(data)
        if self._gap >= bits:
            self._gap -= bits
            return data
        out = bytearray(data)
        pos = self._gap
        while pos < bits:
            out[pos // 8] ^= 1 << (pos % 8)
            self.bits_flipped += 1
            pos += 1 + self._next_gap()
        self._gap = pos - bits
        return bytes(out)

    def send(self, now, data):
        """Schedule `data` written at `now`; returns [(arrival time, bytes), ...] (none if dropped)."""
        start = max(now, self.free_at)
        duration = len(data) * self.byte_s
        self.free_at = start + duration
        self.bytes_sent += len(data)
        data = self._corrupt(bytes(data))
        rng = self.rng
        if self.drop and rng.random() < self.drop:
            return []
        arrival = self.free_at + self.latency
        if self.reorder and rng.random() < self.reorder:
            arrival += duration * rng.uniform(1.0, 3.0) + rng.uniform(0.0, 0.05)
        out = [(arrival, data)]
        if self.dup and rng.random() < self.dup:
            out.append((arrival + duration, data))
        return out


class LinkEmu:
    """Two Lines between endpoints "a" and "b" and the queue of bytes in flight."""

    def __init__(self, baud, turnaround_ms=0, ber=0.0, drop=0.0, dup=0.0, reorder=0.0, seed=1):
        self.rng = random.Random(seed)
        self.lines = {side: Line(baud, turnaround_ms, ber, drop, dup, reorder, self.rng) for side in "ab"}
        self._queue = []
        self._n = 0

    def write(self, side, now, data):
        """Endpoint `side` writes `data` at time `now` (seconds); it reaches the other endpoint later."""
        other = "b" if side == "a" else "a"
        for arrival, chunk in self.lines[side].send(now, data):
            self._n += 1
            heapq.heappush(self._queue, (arrival, self._n, other, chunk))

    def tx_free_at(self, side):
        """When `side`'s line has sent everything written so far."""
        return self.lines[side].free_at

    def next_arrival(self):
        return self._queue[0][0] if self._queue else None

    def receive_until(self, t):
        """[(side, bytes)] of everything that arrived at or before time t, in arrival order."""
        out = []
        while self._queue and self._queue[0][0] <= t:
            _, _, side, chunk = heapq.heappop(self._queue)
            out.append((side, chunk))
        return out
