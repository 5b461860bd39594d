"""firmware/health.py and the NFC task's use of it, inside MicroPython: a bit is set by an answer and
cleared only after `limit` failures in a row; the scanner watch re-probes and clears the scanner bit
when the module stops answering, sets it again when it comes back, and never probes mid-code; the NFC
task clears its bit after repeated chip failures, starts the chip again and sets it once it answers.
On the virtual board with emulators: tests/vboard/test_status_health.py."""

import pytest

from protocol import link


@pytest.fixture
def mp(runtime):
    if runtime.name != "micropython":
        pytest.skip("device code (const, asyncio.sleep_ms): runs on MicroPython")
    return runtime


def body_counting(events, limit):
    from firmware import health

    h = health.Health()
    out = []
    for ev in events:
        if ev == "ok":
            h.ok(0x08)
            out.append((h.bits, False))
        else:
            cleared = h.failed(0x08, limit)
            out.append((h.bits, cleared))
    return out


def test_a_bit_is_cleared_only_after_limit_failures_in_a_row(mp):
    got = mp.run(body_counting, ["fail", "ok", "fail", "ok", "fail", "fail", "fail", "fail", "ok", "fail"], 2)
    assert got == [
        (0, False),  # never answered: clear, and no transition to report
        (0x08, False),
        (0x08, False),  # one failure is not enough
        (0x08, False),  # an answer resets the count
        (0x08, False),
        (0, True),  # the second failure in a row clears it: reported once
        (0, False),
        (0, False),
        (0x08, False),
        (0x08, False),
    ]


def body_scanner_watch(script):
    """watch_scanner against a fake module, one script step per probe period: "answer" (it answers the
    probe, if one went out), "mute", "code" (a code line arrives) or "busy" (a code is half received
    at the period's end).  Time is the test's: sleep_ms is where a period passes."""
    from firmware import health
    from protocol import link

    class Done(BaseException):
        pass

    class Scanner:
        heard = 0
        mid_code = False
        probed = 0

        def busy(self):
            return self.mid_code

        def probe(self):
            self.probed += 1

    s = Scanner()
    h = health.Health()
    h.ok(link.HEALTH_SCANNER)  # it answered at boot
    out = []
    steps = list(script)

    class Clock:
        @staticmethod
        async def sleep_ms(ms):
            out.append((h.bits, s.probed))  # the bit after the last period, and whether this one probed
            s.probed = 0
            if not steps:
                raise Done()
            step = steps.pop(0)
            if step == "answer" and out[-1][1] or step == "code":
                s.heard += 1
            s.mid_code = step == "busy"

    health.asyncio = Clock
    try:
        health.watch_scanner(s, h, period_ms=20, misses=2).send(None)
    except Done:
        pass
    return out


def test_the_scanner_bit_follows_probe_answers(mp):
    got = mp.run(body_scanner_watch, ["answer", "mute", "mute", "mute", "code", "answer", "busy", "busy", "code"])
    s = link.HEALTH_SCANNER
    # two silent periods in a row clear the bit; a code (or an answer) sets it again; a code that is
    # half received at the end of a period is no failure
    assert [b for b, _ in got] == [s, s, s, 0, 0, s, s, s, s, s]
    # one probe per period, none while a code is half received
    assert [n for _, n in got] == [1, 1, 1, 1, 1, 1, 1, 0, 0, 1]


def body_nfc(script):
    """NfcTask against a fake chip, each script entry one command's fate ("ok" or "fail"); time is the
    test's (sleep_ms returns at once and notes the health bits)."""
    from firmware import health, nfc
    from protocol import pn532

    class Done(BaseException):  # not an Exception: the task's error handlers let it out
        pass

    class Dev:
        def __init__(self):
            self.calls = []

        def _next(self, what):
            self.calls.append(what)
            if not script:
                raise Done()
            if script.pop(0) == "fail":
                raise pn532.Pn532Error("no ACK")

        async def begin(self):
            self._next("begin")

        async def poll(self):
            self._next("poll")
            return None

    nfc_bits = health.Health()
    bits = []

    import asyncio

    class Clock:
        Lock = asyncio.Lock  # the task's lock between polls (the console's selftest asks the chip then)

        @staticmethod
        async def sleep_ms(ms):
            bits.append(nfc_bits.bits)

    nfc.asyncio = Clock
    task = nfc.NfcTask(None, Dev(), nfc_bits)  # no card is ever read here: no taps to decide
    try:
        task.run().send(None)
    except Done:
        pass
    return task.dev.calls, bits


def test_the_nfc_bit_clears_after_repeated_failures_and_returns_with_the_chip(mp):
    script = ["fail", "ok", "ok", "fail", "ok", "fail", "fail", "fail", "fail", "ok", "ok"]
    calls, bits = mp.run(body_nfc, script)
    # begin fails once, then answers; a single failed poll is tolerated; three in a row restart the chip
    assert calls == ["begin", "begin", "poll", "poll", "poll", "poll", "poll", "poll", "begin", "begin",
                     "poll", "poll"]
    n = link.HEALTH_NFC
    assert bits == [0, n, n, n, n, n, 0, n]


def test_the_nfc_bit_stays_clear_while_the_chip_never_answers(mp):
    calls, bits = mp.run(body_nfc, ["fail"] * 8)
    assert calls == ["begin"] * 9
    assert bits == [0] * 8
