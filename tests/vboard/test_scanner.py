"""The firmware's scanner driver against the GM65 emulator on a pty the emulator owns: the driver
raises the module to 115200 baud at boot, finds it again there after a warm reboot, reads codes at the
new rate, and shrugs off noise and late answer frames.  Also the emulator's own protocol over pyserial.
"""

import json
import os
import subprocess
import sys

import serial

from host_sim.emulators import serial_pty
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import vboard
from protocol import cpm, gm65
from tests.vboard.helpers import ROOT, Events


def code(atc):
    return cpm.encode("6212345678901234569", atc=atc, cryptogram=os.urandom(8))


def test_driver_raises_the_module_to_115200_and_reads_codes(tmp_path):
    emu = ScannerEmulator()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), attach={"scanner": emu.port}).start()
    try:
        board.wait_console(b"ready:", timeout=20)
        assert "scanner: 115200 baud" in board.console_text()
        assert emu.state.baud == 115200 and serial_pty.line_baud(emu.slave, default=0) == 115200
        assert emu.state.saved[gm65.ZONE_BAUD] == 0x39  # not saved to the module's flash
        events = Events(board.ports["events"])
        emu.present(code(1))
        i, ev = events.wait_display()
        assert ev["text"] == "PAID 2.00"
        # noise with no terminator, then a stray answer frame at a line start, then a code
        emu.write(b"\x00\x7e\xff\r\n" + gm65.answer(b"\x1a\x00"))
        emu.present(code(2))
        i, ev = events.wait_display(i + 1)
        assert ev["text"] == "DECLINED"  # the noise line
        i, ev = events.wait_display(i + 1)
        assert ev["text"] == "PAID 2.00", ev
        # warm reboot of the board only: the module stays at 115200; the 9600 probe is lost on the wire
        since = board.console_mark()
        board.restart()
        board.wait_console(b"ready:", timeout=20, since=since)
        assert "scanner: 115200 baud" in board.console_text()[since:]
        assert emu.lost > 0
        emu.present(code(3))
        i, ev = events.wait_display(i + 1)
        assert ev["text"] == "PAID 2.00"
        events.close()
    finally:
        board.stop()
        emu.close()


def test_silent_module_leaves_the_uart_at_9600(board):
    assert "scanner: no answer, listening at 9600 baud" in board.console_text()


def test_emulator_protocol_over_pyserial():
    emu = ScannerEmulator()
    try:
        port = serial.Serial(emu.port, 9600, timeout=1)
        reader = gm65.FrameReader(False)

        def ask(frame):
            port.write(frame)
            got = []
            while not got:
                data = port.read(1)
                assert data, "no answer to %s" % frame.hex()
                got = reader.feed(data)
            return got[0]

        assert ask(gm65.read(gm65.ZONE_MODE, 1)) == (0, bytes([gm65.MODE_CONTINUOUS]))
        assert ask(b"\xff\x7e" + gm65.write(gm65.ZONE_MODE, bytes([gm65.MODE_COMMAND]))) == (0, b"\x00")
        assert ask(gm65.write(gm65.ZONE_TAIL, bytes([gm65.TAIL_CR << gm65.TAIL_SHIFT]))) == (0, b"\x00")
        wildcard = gm65.read(gm65.ZONE_BAUD, 2)[:-2] + gm65.NO_CRC
        assert ask(wildcard) == (0, b"\x39\x01")
        assert ask(gm65.save()) == (0, b"\x00")
        assert emu.state.settings()["mode"] == "command" and emu.state.terminator == b"\r"
        emu.present("hello")
        assert port.read(6) == b"hello\r"
        assert ask(gm65.write(gm65.ZONE_BAUD, gm65.baud_value(115200))) == (0, b"\x00")
        port.baudrate = 115200
        assert ask(gm65.read(gm65.ZONE_BAUD, 2)) == (0, b"\x1a\x00")
        port.write(gm65.write(gm65.ZONE_BAUD, b"\x01\x00"))  # a divisor the module lacks: no answer
        assert port.read(1) == b""
        port.close()
    finally:
        emu.close()


def test_emulate_scanner_command_prints_its_port_first():
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "emulate", "scanner"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["port"].startswith("/dev/pts/") and info["baud"] == 9600
        port = serial.Serial(info["port"], 9600, timeout=2)
        proc.stdin.write("CODE-1\n")
        proc.stdin.flush()
        assert port.read(8) == b"CODE-1\r\n"
        port.close()
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
        assert json.loads(proc.stdout.readline())["commands"] == 0
    finally:
        proc.kill()


def _noise_cases():
    from hypothesis import strategies as st
    from runtimes import draw_examples

    def clean(b):
        return b.replace(b"\r", b"").replace(b"\n", b"")

    plain = st.binary(min_size=1, max_size=40).map(clean).filter(lambda b: b and b[0] != 2)
    fake = st.binary(max_size=10).map(lambda b: clean(b"\x02\x00" + b))
    real = st.lists(st.binary(max_size=8), min_size=1, max_size=2).map(
        lambda ds: b"".join(gm65.answer(d) for d in ds))
    cases = [(b, 1) for b in draw_examples(plain, 6)] + [(b, 1) for b in draw_examples(fake, 6)]
    cases += [(b, 0) for b in draw_examples(real, 4)]
    # a fake header whose bytes happen to form a valid answer would be dropped: not a decline
    return [(b, 0 if b[:1] == b"\x02" and gm65.FrameReader(False).feed(b) and want else want) for b, want in cases]


def test_lines_after_noise_and_answer_frames_property(tmp_path):
    emu = ScannerEmulator()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), attach={"scanner": emu.port}).start()
    try:
        board.wait_console(b"ready:", timeout=20)
        events = Events(board.ports["events"])
        i = -1
        last = 0
        for atc, (noise, declines) in enumerate(_noise_cases(), start=1):
            emu.write(noise + (b"\r\n" if declines else b""))
            emu.present(code(atc))
            for _ in range(declines):
                i, ev = events.wait_display(i + 1)
                assert ev["text"] == "DECLINED", (noise, ev)
            i, ev = events.wait_display(i + 1)
            assert ev["text"] == "PAID 2.00", (noise, ev)
            seq = int(ev["detail"].lstrip("#"))  # each code its own new record (declined records take numbers too)
            assert seq > last, (noise, ev)
            last = seq
        events.close()
    finally:
        board.stop()
        emu.close()


def test_emulator_presents_codes_read_from_an_image(tmp_path):
    from host_sim.tools import qr_image

    payload = code(1)
    png = qr_image.make_image(payload, str(tmp_path / "code.png"))
    emu = ScannerEmulator()
    try:
        port = serial.Serial(emu.port, 9600, timeout=2)
        assert emu.present_image(png) == 1
        assert port.read(len(payload) + 2) == payload.encode() + b"\r\n"
        port.close()
    finally:
        emu.close()
