"""firmware/drivers/pn532.py inside MicroPython over a scripted transport: the command/ACK/response
cycle, retries after a lost ACK or a NACK, a garbled response asked for again with NACK, timeouts
ending in an abort ACK, MI chaining both ways, status codes, a target removed mid-exchange.

The driver is device code (time.ticks_ms, asyncio.sleep_ms, const) so these bodies run on the
MicroPython runtime only; the byte protocol it speaks is protocol/pn532.py, tested on both runtimes.
Each script entry is what the "chip" sends after one host write: a list of byte strings (chunks).
The whole driver against the emulator over a pty is tests/host_sim/emulators/test_pn532_emulator.py.
"""

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

from protocol import pn532


@pytest.fixture
def mp(runtime):
    if runtime.name != "micropython":
        pytest.skip("device driver: runs on MicroPython (its byte protocol is tested on both runtimes)")
    return runtime


def body_run(script, steps):
    """Run driver steps against a transport that answers each write with the next script entry."""
    import asyncio

    from firmware.drivers import pn532 as drv
    from protocol import pn532

    class Scripted:
        def __init__(self):
            self.written = []
            self.queue = []
            self.wakes = 0

        def wake(self):
            self.wakes += 1

        def write(self, data):
            self.written.append(bytes(data))
            if script:
                self.queue.extend(script.pop(0))

        def flush(self):
            pass

        async def read(self, timeout_ms, expect=0):
            if self.queue:
                return memoryview(self.queue.pop(0))
            await asyncio.sleep_ms(min(timeout_ms, 5))
            return None

    t = Scripted()
    d = drv.Pn532(t)

    async def main():
        out = []
        for step in steps:
            try:
                if step[0] == "begin":
                    out.append(await d.begin())
                elif step[0] == "poll":
                    out.append(await d.poll())
                elif step[0] == "apdu":
                    out.append(await d.exchange(step[1]))
                elif step[0] == "release":
                    out.append(await d.release())
            except pn532.Pn532Error as e:
                out.append((type(e).__name__, str(e)))
        return out

    result = asyncio.run(main())
    return result, t.written, t.wakes, d.apdus


def ack_then(code, data):
    return [pn532.ACK, pn532.response(code, data)]


FW = ack_then(0x02, b"\x32\x01\x06\x07")
SAM = ack_then(0x14, b"")
RF = ack_then(0x32, b"")
ATS = bytes.fromhex("0578807002")
LISTED = ack_then(0x4A, b"\x01\x01\x00\x04\x20\x04\x08\x12\x34\x56" + ATS)


def test_begin_poll_exchange_release(mp):
    script = [FW, SAM, RF, LISTED, ack_then(0x40, b"\x00\x6f\x00\x90\x00"), ack_then(0x52, b"\x00")]
    out, written, wakes, apdus = mp.run(body_run, script, [("begin",), ("poll",), ("apdu", b"\x00\xa4\x04\x00"),
                                                         ("release",)])
    assert out == [(0x32, 1, 6, 7), (1, b"\x00\x04", 0x20, b"\x08\x12\x34\x56", ATS), b"\x6f\x00\x90\x00", None]
    assert written[0] == pn532.get_firmware_version()
    assert written[1] == pn532.sam_configuration()
    assert written[2] == pn532.command(0x32, b"\x05\xff\x01\x02")
    assert written[3] == pn532.in_list_passive_target()
    assert written[4] == pn532.in_data_exchange(1, b"\x00\xa4\x04\x00")
    assert wakes == 1 and apdus == 1


def test_no_target_is_none(mp):
    out, _, _, _ = mp.run(body_run, [ack_then(0x4A, b"\x00")], [("poll",)])
    assert out == [None]


def test_lost_ack_and_nack_are_retried(mp):
    # First write: silence; second: a NACK; third: a good cycle in byte-sized chunks.
    good = [bytes([b]) for b in pn532.ACK + pn532.response(0x4A, b"\x00")]
    out, written, wakes, _ = mp.run(body_run, [[], [pn532.NACK], good], [("poll",)])
    assert out == [None]
    assert written == [pn532.in_list_passive_target()] * 3
    assert wakes == 2  # each failed try re-sends the HSU wake-up


def test_garbled_response_is_asked_for_again_with_nack(mp):
    resp = pn532.response(0x40, b"\x00\x90\x00")
    bad = resp[:-2] + bytes([resp[-2] ^ 0xFF]) + resp[-1:]
    out, written, _, _ = mp.run(body_run, [[pn532.ACK, bad], [resp]], [("apdu", b"\x00\xb2\x01\x0c\x00")])
    assert out == [b"\x90\x00"]
    assert written[1] == pn532.NACK


def test_response_timeout_aborts_with_ack(mp):
    out, written, _, _ = mp.run(body_run, [[pn532.ACK]], [("poll",)])
    assert out == [("Pn532Timeout", "no response to command 0x4A")]
    assert written[-1] == pn532.ACK


def test_no_ack_at_all_gives_up_after_retries(mp):
    out, written, _, _ = mp.run(body_run, [], [("begin",)])
    assert out[0][0] == "Pn532Timeout" and "3 tries" in out[0][1]
    assert len(written) == 3


def test_syntax_error_frame(mp):
    out, _, _, _ = mp.run(body_run, [[pn532.ACK, pn532.ERROR_FRAME]], [("poll",)])
    assert out == [("Pn532Error", "PN532 refused command 0x4A (syntax error frame)")]


def test_mi_chaining_of_a_long_answer(mp):
    part1 = bytes(range(200))
    part2 = bytes(range(100)) + b"\x90\x00"
    script = [ack_then(0x40, b"\x40" + part1), ack_then(0x40, b"\x00" + part2)]
    out, written, _, _ = mp.run(body_run, script, [("apdu", b"\x00\xb2\x01\x0c\x00")])
    assert out == [part1 + part2]
    assert written[1] == pn532.in_data_exchange(1, b"")


def test_long_command_is_sent_chained(mp):
    apdu = bytes(300)
    script = [ack_then(0x40, b"\x00"), ack_then(0x40, b"\x00\x90\x00")]
    out, written, _, _ = mp.run(body_run, script, [("apdu", apdu)])
    assert out == [b"\x90\x00"]
    assert written == [pn532.in_data_exchange(1, apdu[:262], more=True), pn532.in_data_exchange(1, apdu[262:])]


def test_target_removed_mid_read(mp):
    script = [ack_then(0x40, b"\x00\x90\x00"), ack_then(0x40, b"\x2b"), ack_then(0x40, b"\x01"),
              [pn532.ACK], ack_then(0x40, b"\x13")]
    steps = [("apdu", b"\x00\xa4"), ("apdu", b"\x00\xb2"), ("apdu", b"\x00\xb2"), ("apdu", b"\x00\xb2"),
             ("apdu", b"\x00\xb2")]
    out, _, _, _ = mp.run(body_run, script, steps)
    assert out == [b"\x90\x00", ("TargetGone", "card disappeared"), ("TargetGone", "target did not answer"),
                   ("TargetGone", "no answer from the target"), ("Pn532Error", "InDataExchange: data format wrong")]


def test_not_a_pn532(mp):
    out, _, _, _ = mp.run(body_run, [ack_then(0x02, b"\x31\x01\x06\x07")], [("begin",)])
    assert out == [("Pn532Error", "not a PN532 (IC 0x31)")]


def test_late_answer_to_an_aborted_command_is_skipped(mp):
    # A response to GetFirmwareVersion (and its ACK) still in the line when InListPassiveTarget runs.
    stale = [pn532.ACK, pn532.response(0x02, b"\x32\x01\x06\x07")]
    out, _, _, _ = mp.run(body_run, [stale + [pn532.ACK] + [pn532.response(0x4A, b"\x00")]], [("poll",)])
    assert out == [None]


def body_i2c(script, steps):
    """The driver over I2cTransport and a fake bus that answers like the PN532's I2C interface."""
    import asyncio

    from firmware.drivers import pn532 as drv

    class FakeI2C:
        def __init__(self):
            self.frames = []
            self.written = []
            self.polls = 0

        def writeto(self, addr, data):
            assert addr == 0x24
            self.written.append(bytes(data))
            if script and data != b"\x00":
                self.frames.extend(script.pop(0))

        def readfrom_into(self, addr, buf):
            if len(buf) == 1:  # status byte: ready only on every second poll, as if the chip were busy
                self.polls += 1
                buf[0] = 1 if self.frames and self.polls % 2 == 0 else 0
                return
            frame = self.frames.pop(0)
            buf[0] = 1
            n = min(len(frame), len(buf) - 1)
            buf[1 : 1 + n] = frame[:n]
            for i in range(1 + n, len(buf)):
                buf[i] = 0

    bus = FakeI2C()
    d = drv.Pn532(drv.I2cTransport(bus))

    async def main():
        out = []
        for step in steps:
            out.append(await d.begin() if step[0] == "begin" else await d.exchange(step[1]) if step[0] == "apdu"
                       else await d.poll())
        return out

    return asyncio.run(main()), bus.written


def test_i2c_transport(mp):
    script = [FW, SAM, RF, LISTED, ack_then(0x40, b"\x00\x6f\x00\x90\x00")]
    out, written = mp.run(body_i2c, script, [("begin",), ("poll",), ("apdu", b"\x00\xa4\x04\x00")])
    assert out == [(0x32, 1, 6, 7), (1, b"\x00\x04", 0x20, b"\x08\x12\x34\x56", ATS), b"\x6f\x00\x90\x00"]
    assert written[0] == b"\x00"  # wake-up: an addressed write
    assert written[1:3] == [pn532.get_firmware_version(), pn532.sam_configuration()]


def test_random_chip_answers_give_values_or_pn532_errors(mp):
    valid = [pn532.ACK, pn532.NACK, pn532.ERROR_FRAME, pn532.response(0x40, b"\x00\x90\x00"),
             pn532.response(0x40, b"\x40\x01"), pn532.response(0x4A, b"\x01\x01\x00\x04\x20\x04\x01\x02\x03\x04"),
             pn532.response(0x4A, b"\x01")]
    chunk = st.one_of(st.sampled_from(valid), st.binary(min_size=1, max_size=30))
    script = st.lists(st.lists(chunk, max_size=4), max_size=5)
    examples = draw_examples(st.tuples(script, st.lists(st.sampled_from(["poll", "apdu"]), min_size=1, max_size=3)),
                             30)
    cases = [(s, [(k, b"\x00\xb2\x01\x0c\x00") for k in kinds]) for s, kinds in examples]
    for out, _, _, _ in mp.run_many(body_run, cases):
        for item in out:
            # body_run catches only Pn532Error (and subclasses): anything else fails the run
            assert item is None or isinstance(item, (bytes, tuple)), item
