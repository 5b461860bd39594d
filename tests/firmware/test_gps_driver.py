"""firmware/drivers/gps.py on both runtimes: RMC and GGA positions in micro-degrees from the sentences the GPS
emulator sends, "no fix" sentences, bad checksums, garbage and overlong lines counted and ignored; and,
on CPython, any bytes at all never raise (property test)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from host_sim.emulators import gps as emulator


def body_feed(chunks):
    from firmware.drivers import gps

    g = gps.Nmea()
    out = []
    for chunk in chunks:
        got = g.feed(chunk, len(chunk))
        out.append([got, g.lat_e6, g.lon_e6] if got == gps.FIX else [got])
    return out, g.bad, g.fixes


def test_positions_no_fix_and_faults(runtime):
    ok = emulator.fix_sentences(30274100, 120155000, 1_800_000_000)
    south_west = emulator.fix_sentences(-33868800, -70669300, 1_800_000_000)
    chunks = [
        ok[:20], ok[20:],  # one fix across two reads
        south_west,
        emulator.fix_sentences(1, 2, 1_800_000_000, fix=False),
        emulator.fix_sentences(30274100, 120155000, 1_800_000_000, bad=True),
        b"\x00\xff$GP\x13RMC,garbage\r\n",
        b"$GPRMC," + b"9" * 200 + b"*00\r\n",
        emulator.sentence("GPGSV,3,1,11,03,03,111,00").encode(),
        emulator.sentence("GPRMC,120000.00,A,3016.4460,N,12009.3000,E,0.0,0.0,041226,,,A").encode(),
        emulator.sentence("GPRMC,120000.00,A,30x6.4460,N,12009.3000,E,0.0,0.0,041226,,,A").encode(),
    ]
    out, bad, fixes = runtime.run(body_feed, chunks)
    assert out[0] == [0]
    assert out[1] == [1, 30274100, 120155000]
    assert out[2] == [1, -33868800, -70669300]
    assert out[3] == [2] and out[4] == [4] and out[5] == [5] and out[6] == [5] and out[7] == [3]
    assert out[8] == [1, 30274100, 120155000]  # 16.446' = 0.2741 degrees
    assert out[9] == [5]
    assert bad == 5 and fixes == 5  # RMC and GGA each give the fix


def test_the_checksum_is_the_xor_of_the_body():
    assert emulator.checksum("GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,") == "76"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_any_bytes_are_a_status_never_an_exception(chunks):
    from firmware.drivers import gps

    g = gps.Nmea()
    for chunk in chunks:
        assert g.feed(chunk, len(chunk)) in (gps.NONE, gps.FIX, gps.NO_FIX, gps.OTHER, gps.BAD_CHECKSUM, gps.GARBAGE)
        assert -90000000 <= g.lat_e6 <= 90000000 and -180000000 <= g.lon_e6 <= 180000000
