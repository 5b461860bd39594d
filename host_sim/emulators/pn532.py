"""A PN532 on its High Speed UART, with emulated cards and HCE phones in its field.

It speaks the chip's host protocol byte for byte (protocol/pn532.py; UM0701-02 §6.2): every good
command frame is answered with an ACK and then a response frame, a NACK from the host repeats the last
response, an ACK from the host aborts a pending command, a command it does not know gets the
application-level error frame.  Enough of the command set is there for two different clients: the
terminal's driver (firmware/drivers/pn532.py) and nfcpy's own PN532 driver, which also diagnoses the
line with an extended frame, reads and writes CIU registers, sets RF parameters and raises the baud
rate with SetSerialBaudRate.

The field holds at most one target, an EMV application from host_sim/emulators/emv_card.py.  Faults
for the emulator itself: `slow` (each InDataExchange answer waits `slow_s`), `removal` (the target
leaves after `remove_after` APDUs: InDataExchange then answers status 01, as a chip does when the
target stops answering), `silent` (the chip itself answers nothing, as if it hung or lost power).
`dwell_s` removes a target that long after the terminal released it, the way a passenger takes a
phone away after the beep.
"""

import json
import sys
import threading
import time

from host_sim import arguments
from host_sim.emulators import emv_card
from host_sim.emulators.serial_emulator import SerialEmulator
from protocol import pn532

FIRMWARE = b"\x32\x01\x06\x07"  # IC PN532, firmware 1.6, supports ISO 14443 A, B and ISO 18092
CHAIN = 262
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # SetSerialBaudRate BR
FIFO_DATA = 0x6339  # CIU_FIFOData: nfcpy reads it after an empty InListPassiveTarget (26 = REQA still there)
SENS_RES = b"\x00\x04"
SEL_RES_ISO_DEP = 0x20


class Pn532Emulator(SerialEmulator):
    NAME = "pn532-emulator"

    def __init__(self, port=None, baudrate=115200):
        self.lock = threading.RLock()
        self.card = None
        self._cards = {}
        self.faults = set()
        self.silent = False  # a chip that lost power or hung: what the host sends goes unanswered
        self.slow_s = 0.3
        self.remove_after = 3
        self.dwell_s = None
        self.apdus = 0
        self.commands = []  # command codes seen, for tests
        self._active = False
        self.params = 0x14  # SetParameters flags at power-up: fAutomaticATR_RES and fAutomaticRATS set
        self._rx_chain = b""
        self._tx_rest = b""
        self._last = None
        self._new_baud = None
        self._removal_at = None
        self.reader = pn532.FrameReader()
        super().__init__(port or None, baud=baudrate)
        self.start()

    # --- the field -----------------------------------------------------------------------------------

    def present(self, profile, faults=(), atc=None, **options):
        """Put a card or phone in the field.  The same profile presented again is the same device, with
        its transaction counter where it was; `atc` starts it afresh (to replay an old counter)."""
        with self.lock:
            card = self._cards.get(profile)
            if card is None or atc is not None:
                card = self._cards[profile] = emv_card.Card(profile, atc=1 if atc is None else atc)
            card.faults = set(f for f in faults if f not in ("slow", "removal"))
            self.card = card
            self.faults = set(faults)
            for k, v in options.items():
                setattr(self, k, v)
            self.apdus = 0
            self._active = False
            self._removal_at = None

    def remove(self):
        with self.lock:
            self.card = None
            self._active = False

    # --- bytes ---------------------------------------------------------------------------------------

    def poll(self):
        data = self.read()
        if self._removal_at is not None and time.monotonic() >= self._removal_at:
            self.remove()
            self._removal_at = None
        if data and not self.silent:
            self.received(data)

    def received(self, data):
        for kind, payload in self.reader.feed(data):
            if kind == pn532.EV_NACK and self._last is not None:
                self.write(self._last)  # §6.2.1.4: the host asks for the last response again
            elif kind == pn532.EV_FRAME and payload[0] == pn532.TFI_HOST and len(payload) >= 2:
                self.write(pn532.ACK)
                response = self._command(payload[1], bytes(payload[2:]))
                if response is not None:
                    self._last = response
                    self.write(response)
                if self._new_baud:
                    # The manual has the chip switch after the host's ACK, but nfcpy reopens its port
                    # at once and flushes that ACK away: switch as soon as the response is out.
                    # A pty has no rate of its own: its pacing follows the host's setting.
                    self.set_line_rate(self._new_baud)
                    self._new_baud = None

    # --- commands (UM0701-02 §7) -----------------------------------------------------------------------

    def _command(self, code, data):
        with self.lock:
            self.commands.append(code)
            handler = getattr(self, "_cmd_%02x" % code, None)
            if handler is None:
                return pn532.ERROR_FRAME
            result = handler(data)
            return None if result is None else pn532.response(code, result)

    def _cmd_00(self, data):  # Diagnose: test 0 echoes the data (communication line test)
        return data if data[:1] == b"\x00" else b"\x00"

    def _cmd_02(self, data):  # GetFirmwareVersion
        return FIRMWARE

    def _cmd_06(self, data):  # ReadRegister: one value per 2-byte address, no status byte on a PN532
        regs = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data) - 1, 2)]
        return bytes(0x26 if r == FIFO_DATA and self.card is None else 0 for r in regs)

    def _cmd_08(self, data):  # WriteRegister
        return b""

    def _cmd_10(self, data):  # SetSerialBaudRate: the new rate applies after the host's ACK
        if data and data[0] < len(BAUD_RATES):
            self._new_baud = BAUD_RATES[data[0]]
        return b""

    def _cmd_12(self, data):  # SetParameters
        if data:
            self.params = data[0]
        return b""

    def _cmd_14(self, data):  # SAMConfiguration
        return b""

    def _cmd_16(self, data):  # PowerDown
        return b"\x00"

    def _cmd_32(self, data):  # RFConfiguration
        return b""

    def _cmd_4a(self, data):  # InListPassiveTarget, 106 kbps type A only
        if len(data) < 2 or data[1] != pn532.BRTY_106A or self.card is None:
            return b"\x00"
        self._active = True
        self._rx_chain = b""
        self._tx_rest = b""
        nfcid = self.card.nfcid
        # With fAutomaticRATS (SetParameters bit 4) the chip activates ISO-DEP itself and adds the ATS.
        ats = emv_card.ATS if self.params & 0x10 else b""
        return b"\x01\x01" + SENS_RES + bytes([SEL_RES_ISO_DEP, len(nfcid)]) + nfcid + ats

    def _cmd_52(self, data):  # InRelease
        if self._active and self.dwell_s is not None and self._removal_at is None:
            self._removal_at = time.monotonic() + self.dwell_s
        self._active = False
        return b"\x00"

    def _cmd_44(self, data):  # InDeselect
        self._active = False
        return b"\x00"

    def _cmd_40(self, data):  # InDataExchange with MI chaining both ways
        if not data or data[0] & 0x3F != 1 or not self._active:
            return b"\x27"  # command not acceptable: no such target
        if self.card is None:
            return b"\x01"
        if data[0] & pn532.STATUS_MI:
            self._rx_chain += data[1:]
            return b"\x00"
        apdu = self._rx_chain + data[1:]
        self._rx_chain = b""
        if not apdu and self._tx_rest:
            answer, self._tx_rest = self._tx_rest, b""
        else:
            self.apdus += 1
            if "removal" in self.faults and self.apdus > self.remove_after:
                self.card = None
                self._active = False
                return b"\x01"  # the target stopped answering
            if "slow" in self.faults:
                time.sleep(self.slow_s)
            answer = self.card.respond(apdu)
        if len(answer) > CHAIN:
            self._tx_rest = answer[CHAIN:]
            return b"\x40" + answer[:CHAIN]
        return b"\x00" + answer


def main(args):
    emu = Pn532Emulator(args.serve or args.port)
    if args.card:
        emu.present(args.card, args.fault or (), dwell_s=args.dwell)
    print(json.dumps({"port": emu.port, "card": args.card, "faults": args.fault or []}), flush=True)
    try:
        for line in sys.stdin:  # "present PROFILE [FAULT...]", "remove"
            words = line.split()
            if words[:1] == ["present"] and len(words) > 1 and words[1] in emv_card.PROFILES:
                emu.present(words[1], words[2:], dwell_s=args.dwell)
            elif words[:1] == ["remove"]:
                emu.remove()
            elif words:
                print(json.dumps({"error": "unknown command %r" % line.strip()}), flush=True)
    except KeyboardInterrupt:
        pass
    emu.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--card", choices=sorted(emv_card.PROFILES), help="a card or phone in the field from the start")
    parser.add_argument("--fault", action="append",
                        choices=["aac", "tc", "no_cid", "expired", "cvm", "wrong_fci", "sw", "gpo_sw", "truncated",
                                 "no_app", "slow", "removal"],
                        help="make the card misbehave (repeatable)")
    parser.add_argument("--dwell", type=float, default=None, help="remove the card this many seconds after release")
    parser.add_argument("--serve", metavar="PORT", type=arguments.serial_port,
                        help="serve a real serial port (e.g. /dev/ttyUSB0) instead of a pty")
    parser.add_argument("--port", type=arguments.serial_port,
                        help="attach to an existing pty (e.g. a virtual board's nfc port)")
