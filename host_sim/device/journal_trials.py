"""Power-cut trials of firmware/journal.py on a NorFlash, run inside the MicroPython unix port.

`python -m host_sim bench journal` runs this file in `micropython` with argv: trials, seed.
One journal lives on one small chip across all trials, so the trials also cross sector wrap-around,
reclaim and watermark sector switches.  A trial runs random taps (append), host ACKs and idle
prepare() calls until the power fails after a random number of page programs or erases (possibly in
the middle of one: a torn program or erase), then reboots: a new Journal on the same bytes.  The
check is against what the application was told: every record append() returned for and the host did
not acknowledge must be there, intact, exactly once; new sequence numbers must be fresh.

The measurements (records per MB, programs per record, append time, recovery time) come from a
separate steady run on a 1 MB chip with the EMV-QR record of a deferred-authorisation tap.
"""

import random
import sys
import time

from firmware.journal import Journal, JournalFull
from host_sim.device import results
from host_sim.device.norflash import NorFlash, PowerCut
from protocol import crypto, record

KEY = b"journal bench device key 32 byte"
TERMINAL = b"ZF000001"
EXT_SEALED_EMV = 0x30  # the NFC branch's sealed EMV data (tag number local to this benchmark)
AID = bytes([0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01])  # UnionPay debit
_SEALED = crypto.seal(b"bench seal key 0123456789abcdef!", b"\x01" * 12, bytes(32))  # 12 + 32 + 16 = 60


def build(seq):
    """An EMV-QR record with full deferred-authorisation data (ATC, AID, sealed EMV data): 120 bytes."""
    atc = bytes([(seq >> 8) & 0xFF, seq & 0xFF])
    token = bytes([(seq * 7 + i) & 0xFF for i in range(16)])
    return record.encode(TERMINAL, seq, 1700000000 + seq, record.KIND_QR_CPM, 200, 156, record.ACCEPTED,
                         record.REASON_NONE, 1, token,
                         [(record.EXT_ATC, atc), (record.EXT_AID, AID), (EXT_SEALED_EMV, _SEALED)])


class Model:
    """What the application and the host know, to check a recovered journal against."""

    def __init__(self):
        self.outstanding = []  # seqs signalled as accepted (or recovered) and not acknowledged, ascending
        self.host_acked = 0  # the highest ACK the host ever sent
        self.max_seq = 0  # the highest seq ever handed out (signalled or recovered)


def _trial(dev, j, m, stats, rnd):
    dev.cut_after = rnd.getrandbits(16) % 80
    try:
        while j.prepare():  # the application's idle task after boot
            pass
        for _ in range(400):
            r = rnd.getrandbits(8)
            if r < 150:
                if j.full:
                    continue
                before = dev.erases
                seq = j.append(build)
                if dev.erases != before:
                    stats["erases_on_tap_path"] += 1
                m.outstanding.append(seq)
                m.max_seq = max(m.max_seq, seq)
            elif r < 200:
                if m.outstanding:
                    upto = m.outstanding[rnd.getrandbits(8) % len(m.outstanding)]
                    m.host_acked = max(m.host_acked, upto)
                    j.ack(upto)
                    m.outstanding = [s for s in m.outstanding if s > upto]
            else:
                j.prepare()
    except PowerCut:
        pass
    # reboot, maybe with a second power cut during recovery
    while True:
        dev.reboot()
        if rnd.getrandbits(3) == 0:
            dev.cut_after = rnd.getrandbits(2)
        try:
            j = Journal(dev, KEY).open()
            dev.cut_after = -1
            break
        except PowerCut:
            continue
        except Exception as e:  # noqa: BLE001 (a mount failure is what this counts)
            sys.print_exception(e)
            stats["mount_failures"] += 1
            return None
    return _check(j, m, stats)


def _check(j, m, stats):
    got = j.pending(100000, 1 << 30)
    seen = {}
    last = 0
    for rec in got:
        seq = record.seq_of(rec)
        if seq <= last or seq in seen:
            stats["duplicates"] += 1
        last = seq
        seen[seq] = True
        if rec != build(seq) or seq <= j.acked:
            stats["corrupt_accepted"] += 1
    for s in m.outstanding:
        if s > m.host_acked and s not in seen:
            stats["acknowledged_lost"] += 1
    if j.acked > m.host_acked:
        stats["acknowledged_lost"] += 1  # the journal believes an ACK the host never sent
    if j.next_seq <= m.max_seq or j.next_seq in seen:
        stats["duplicates"] += 1  # a sequence number would be handed out again
    # what is on flash now must reach the host, whatever the app was told
    m.outstanding = sorted(seen)
    if m.outstanding:
        m.max_seq = max(m.max_seq, m.outstanding[-1])
    return j


def trials(count, seed=1):
    # CPython's random.Random where there is one; MicroPython has only the module's generator.
    rnd = random.Random(seed) if hasattr(random, "Random") else random  # pyright: ignore[reportAttributeAccessIssue]
    if rnd is random:
        random.seed(seed)
    stats = {"trials": 0, "acknowledged_lost": 0, "duplicates": 0, "corrupt_accepted": 0, "mount_failures": 0,
             "erases_on_tap_path": 0}
    dev = NorFlash(8)
    j = Journal(dev, KEY).open()
    m = Model()
    for _ in range(count):
        j = _trial(dev, j, m, stats, rnd)
        stats["trials"] += 1
        if j is None:  # start over on a blank chip so the remaining trials still count
            dev = NorFlash(8)
            j = Journal(dev, KEY).open()
            m = Model()
    return stats


def measure(blocks=256, batch=6):
    """Steady-state costs on a 1 MB chip: taps, an ACK every `batch` records, prepare() while idle."""
    dev = NorFlash(blocks)
    j = Journal(dev, KEY).open()
    while j.prepare():
        pass
    times = []
    erases_on_tap = 0
    n = 0
    cache = {}
    p0 = dev.programs
    for _ in range(3000):
        seq = j.next_seq
        rec = build(seq)
        cache[seq] = rec
        before = dev.erases
        t = time.ticks_us()
        j.append(cache.get)
        times.append(time.ticks_diff(time.ticks_us(), t))
        if dev.erases != before:
            erases_on_tap += 1
        del cache[seq]
        n += 1
        if n % batch == 0:
            j.ack(seq)
            while j.prepare():
                pass
    programs_per_record = (dev.programs - p0) / n
    times.sort()
    # fill a fresh chip without ACKs until the journal refuses: capacity and efficiency
    dev = NorFlash(blocks)
    j = Journal(dev, KEY).open()
    count = 0
    size = 0
    while True:
        try:
            rec_len = len(build(j.next_seq))
            j.append(build)
        except JournalFull:
            break
        count += 1
        size += rec_len
        if count % 64 == 0:
            j.prepare()
    mb = blocks * 4096 / (1024 * 1024)
    t = time.ticks_us()
    Journal(dev, KEY).open()
    recovery_ms = time.ticks_diff(time.ticks_us(), t) / 1000
    return {
        "records_per_mb": int(count / mb),
        "storage_efficiency": round(size / (blocks * 4096), 4),
        "append_us_median": times[len(times) // 2],
        "append_us_p99": times[len(times) * 99 // 100],
        "programs_per_record": round(programs_per_record, 3),
        "erases_on_tap_path": erases_on_tap,
        "recovery_ms_full": round(recovery_ms, 1),
        "record_bytes": len(build(1)),
    }


def main(count, seed=1):
    stats = trials(count, seed)
    steady = measure()
    stats["erases_on_tap_path"] += steady.pop("erases_on_tap_path")
    stats.update(steady)
    return stats


if __name__ == "__main__":
    results.report(main(int(sys.argv[1]), int(sys.argv[2])))
