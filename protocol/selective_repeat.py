"""Selective repeat without I/O: what to (re)transmit and when, and which frames a receiver has.

The caller owns the clock (milliseconds, any origin: time.ticks_ms() on a device, simulated time in the
link emulator) and the wire.  Sequence numbers are unbounded here and travel as u16 (link header).

Sender: preallocated slots hold the bodies of unacknowledged frames.  A frame is retransmitted when
DUP_THRESHOLD frames sent after it were acknowledged (the receiver's SACK shows the gap) or when its
retransmit timer (smoothed RTT + max(4 x deviation, RTT / 4), Karn's rule) runs out.  Receiver: cumulative ack and a
128-bit SACK bitmap; each sequence number is delivered once, in any order; duplicates and frames beyond
the window are dropped and counted.
"""

from protocol import link

DUP_THRESHOLD = 3
RTO_MIN_MS = 200
RTO_MAX_MS = 20000
RTO_INITIAL_MS = 3000


def expand(wire, near):
    """The unbounded sequence number whose low 16 bits are `wire`, nearest to `near`."""
    return near + ((wire - near + 0x8000) & 0xFFFF) - 0x8000


class Sender:
    def __init__(self, window, slot_size, slots=None):
        n = slots or window
        self._window0 = self.window = min(window, n, link.MAX_WINDOW)
        self._body = [bytearray(slot_size) for _ in range(n)]
        self._len = [0] * n
        self._type = [0] * n
        self._seq = [0] * n  # 0: slot free
        self._tag = [0] * n
        self._acked = [False] * n
        self._tx = [0] * n  # transmission index of the last send; 0: never sent
        self._sent_at = [0] * n
        self._sends = [0] * n
        self.next_seq = 1
        self.base = 1  # oldest sequence number not yet cumulatively acknowledged
        self.delivered_tag = 0  # tag of the newest frame below base (caller's meaning, e.g. record seq)
        self._txi = 0
        self._max_acked_tx = 0
        self.srtt = 0
        self.rttvar = 0
        self.rto = RTO_INITIAL_MS
        self.retransmits = 0
        self.sent = 0

    def reset(self):
        """Forget every frame, as a new Sender would, keeping the slot buffers (a new session)."""
        for i in range(len(self._body)):
            self._len[i] = self._type[i] = self._seq[i] = self._tag[i] = 0
            self._tx[i] = self._sent_at[i] = self._sends[i] = 0
            self._acked[i] = False
        self.window = self._window0
        self.next_seq = self.base = 1
        self.delivered_tag = self._txi = self._max_acked_tx = 0
        self.srtt = self.rttvar = 0
        self.rto = RTO_INITIAL_MS
        self.retransmits = self.sent = 0

    def set_window(self, window):
        self.window = max(1, min(window, len(self._body), link.MAX_WINDOW))

    def in_flight(self):
        return self.next_seq - self.base

    def can_queue(self):
        return self.in_flight() < self.window

    def queue(self, mtype, body, tag=0):
        """Copy a body into a free slot; returns its sequence number (None when the window is full)."""
        if not self.can_queue():
            return None
        i = self._free_slot()
        if len(body) > len(self._body[i]):
            raise ValueError("body of %d bytes exceeds the %d-byte slot" % (len(body), len(self._body[i])))
        self._body[i][:len(body)] = body
        self._len[i] = len(body)
        self._type[i] = mtype
        self._seq[i] = self.next_seq
        self._tag[i] = tag
        self._acked[i] = False
        self._tx[i] = 0
        self._sends[i] = 0
        self.next_seq += 1
        return self._seq[i]

    def _free_slot(self):
        for i in range(len(self._seq)):
            if self._seq[i] == 0:
                return i
        raise ValueError("no free slot")  # cannot happen: window <= slots

    def poll(self, now):
        """The slot to transmit now (a lost frame first, then the oldest new one), or -1."""
        best = -1
        best_seq = 0
        new = -1
        new_seq = 0
        for i in range(len(self._seq)):
            s = self._seq[i]
            if s == 0 or self._acked[i]:
                continue
            if self._tx[i] == 0:
                if new < 0 or s < new_seq:
                    new, new_seq = i, s
            elif self._tx[i] + DUP_THRESHOLD <= self._max_acked_tx or now - self._sent_at[i] >= self.rto:
                if best < 0 or s < best_seq:
                    best, best_seq = i, s
        return best if best >= 0 else new

    def frame(self, i):
        """(type, seq, body) of slot i."""
        return self._type[i], self._seq[i], memoryview(self._body[i])[:self._len[i]]

    def mark_sent(self, i, now):
        if self._tx[i]:
            self.retransmits += 1
        self._txi += 1
        self._tx[i] = self._txi
        self._sent_at[i] = now
        self._sends[i] += 1
        self.sent += 1

    def next_deadline(self, now):
        """Milliseconds until a retransmit timer runs out (0: now), or None with nothing in flight."""
        best = None
        for i in range(len(self._seq)):
            if self._seq[i] and not self._acked[i] and self._tx[i]:
                left = self.rto - (now - self._sent_at[i])
                if best is None or left < best:
                    best = left
        return None if best is None else max(0, best)

    def on_ack(self, ack, sack, now):
        """Apply a received cumulative ack (u16) and SACK bitmap; returns how many frames it freed."""
        if self.base == self.next_seq:
            return 0
        top = expand(ack, self.base - 1)
        if top < self.base - 1 or top >= self.next_seq:
            return 0  # stale or nonsense: acknowledges nothing we have in flight
        freed = 0
        for i in range(len(self._seq)):
            s = self._seq[i]
            if s == 0 or self._acked[i]:
                continue
            d = s - top - 2
            if s <= top or (0 <= d < link.SACK_BITS and (sack >> d) & 1):
                self._acked[i] = True
                freed += 1
                if self._tx[i] > self._max_acked_tx:
                    self._max_acked_tx = self._tx[i]
                if self._sends[i] == 1:
                    self._rtt_sample(now - self._sent_at[i])
        self._advance()
        return freed

    def _advance(self):
        while self.base < self.next_seq:
            i = self._slot_of(self.base)
            if i < 0 or not self._acked[i]:
                return
            self.delivered_tag = self._tag[i]
            self._seq[i] = 0
            self.base += 1

    def _slot_of(self, seq):
        for i in range(len(self._seq)):
            if self._seq[i] == seq:
                return i
        return -1

    def _rtt_sample(self, rtt):
        if rtt < 0:
            return
        if self.srtt == 0:
            self.srtt = rtt
            self.rttvar = rtt // 2
        else:
            err = rtt - self.srtt
            self.srtt += err // 8
            self.rttvar += ((err if err >= 0 else -err) - self.rttvar) // 4
        # The margin keeps a steady link (deviation ~0) from timing out the frame whose ack is on its way.
        self.rto = min(RTO_MAX_MS, max(RTO_MIN_MS, self.srtt + max(4 * self.rttvar, self.srtt // 4)))

    def reset_timers(self):
        """After a reconnect: everything in flight is sent again, in order."""
        for i in range(len(self._seq)):
            self._tx[i] = 0
        self._max_acked_tx = 0
        self._txi = 0


class Receiver:
    def __init__(self, window):
        self.window = min(window, link.MAX_WINDOW)
        self.cum = 0  # every sequence number <= cum was received
        self._bits = 0  # bit i: cum + 2 + i received
        self.duplicates = 0
        self.out_of_window = 0

    def reset(self):
        """As a new Receiver (a new session)."""
        self.cum = self._bits = self.duplicates = self.out_of_window = 0

    def is_new(self, wire_seq):
        """Whether accept() would deliver this frame; changes nothing (no counters either)."""
        d = expand(wire_seq, self.cum + 1) - self.cum
        return 0 < d <= self.window and (d == 1 or not self._bits & (1 << (d - 2)))

    def accept(self, wire_seq):
        """True if the frame is new (deliver it), False for a duplicate or a frame beyond the window."""
        d = expand(wire_seq, self.cum + 1) - self.cum
        if d <= 0:
            self.duplicates += 1
            return False
        if d > self.window:
            self.out_of_window += 1
            return False
        if d == 1:
            self.cum += 1
            bits = self._bits
            while bits & 1:
                bits >>= 1
                self.cum += 1
            self._bits = bits >> 1
            return True
        bit = 1 << (d - 2)
        if self._bits & bit:
            self.duplicates += 1
            return False
        self._bits |= bit
        return True

    def ack_fields(self):
        """(ack, sack) for the next header: the cumulative ack as u16 and the bitmap."""
        return self.cum & 0xFFFF, self._bits & ((1 << link.SACK_BITS) - 1)
