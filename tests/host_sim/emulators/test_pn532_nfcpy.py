"""An independent PN532 client, nfcpy 1.0.4's own PN532 driver, opens the emulator and senses targets.

nfcpy's `tty:` path syntax (nfc.clf.transport.TTY.find) only names devices directly in /dev (its port
part may not contain "/"), so `tty:pts/3:pn532` cannot address a pty.  The test therefore builds
nfcpy's own serial transport on the pty path (nfc.clf.transport.TTY(path)) and hands it to nfcpy's
PN532 driver entry point (nfc.clf.pn532.init), which is exactly what ContactlessFrontend('tty:...')
does after the path lookup: the whole driver (wake-up preamble, GetFirmwareVersion, SAMConfiguration,
SetSerialBaudRate to 921600 after `stty`, the extended-frame Diagnose line test, SetParameters,
RFConfiguration, InListPassiveTarget, ReadRegister) runs unchanged against the emulator.
"""

import json
import subprocess
import sys

import nfc
import nfc.clf.pn532
import nfc.clf.transport
import pytest

from host_sim.emulators.pn532 import Pn532Emulator
from host_sim.paths import ROOT


def open_nfcpy(path):
    clf = nfc.ContactlessFrontend()
    clf.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(path))
    clf.device._path = path  # what nfc.clf.device.connect records after its lookup
    return clf


@pytest.fixture
def emulator():
    emu = Pn532Emulator()
    yield emu
    emu.close()


def test_nfcpy_senses_a_type_4a_target(emulator):
    emulator.present("unionpay-hce")
    clf = open_nfcpy(emulator.port)
    try:
        assert str(clf.device).startswith("PN532v1.6")
        target = clf.sense(nfc.clf.RemoteTarget("106A"))
        assert target is not None
        assert target.sel_res == b"\x20"  # ISO/IEC 14443-4: a type 4A target
        # The PN532 sends SENS_RES as 00 04; nfcpy stores it in ISO/IEC 14443-3 transmission order.
        assert target.sens_res == b"\x04\x00" and target.sdd_res == b"\x08\x4a\x11\x20"
        emulator.remove()
        assert clf.sense(nfc.clf.RemoteTarget("106A")) is None
    finally:
        clf.close()
    assert 0x10 in emulator.commands and 0x00 in emulator.commands  # baud-rate switch, extended-frame diagnose


def test_nfcpy_through_the_emulate_command():
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "emulate", "pn532", "--card", "visa"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["port"].startswith("/dev/pts/") and first["card"] == "visa"
        clf = open_nfcpy(first["port"])
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
            assert target is not None and target.sel_res == b"\x20"
            assert target.sdd_res == b"\x04\x22\x33\x44\x55\x66\x77"
        finally:
            clf.close()
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_nfcpy_against_a_served_serial_port():
    """--serve: the emulator on an existing port (here one end of a null-modem pair of ptys, as a
    USB-serial adapter would be); nfcpy's baud-rate switch to 921600 is followed on the served port."""
    from host_sim.emulators import serial_pty

    a_master, _, a_path = serial_pty.open_raw_pty()
    b_master, _, b_path = serial_pty.open_raw_pty()
    wire = serial_pty.Wire(a_master, b_master, name="null-modem")
    emu = Pn532Emulator(a_path)
    try:
        emu.present("mastercard")
        clf = open_nfcpy(b_path)
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
            assert target is not None and target.sel_res == b"\x20"
            assert emu.ser.baudrate == 921600, [hex(c) for c in emu.commands]
        finally:
            clf.close()
    finally:
        emu.close()
        wire.close()
