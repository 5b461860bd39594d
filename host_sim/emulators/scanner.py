"""A GM65/GM805-class QR scanner as its UART shows it: decoded codes as text lines, and the
module's configuration protocol (protocol/gm65.py): zone bits read, written and saved, answers
02 00 00 ..., a baud-rate write that takes effect right after its answer, the tail (terminator)
setting applied to every following code.

Three ways to attach:
- own a new pty (default): the firmware opens its path.  Bytes are paced at the *module's* baud rate,
  and command bytes sent while the firmware's line rate differs from it are lost, as framing errors
  lose them on a real wire;
- open an existing port (`port=`): a virtual board's scanner pty, whose wire the board paces;
- serve a real serial device (`--serve /dev/ttyUSB0`): a real board's driver through an adapter; the
  adapter's rate follows the module's.

Sources: text payloads (stdin, one per line), image files (decoded with host_sim.tools.qr_image), and a
webcam through OpenCV for interactive use (`--webcam`, optional; tests never need it).
"""

import json
import os
import sys
import time

from host_sim import arguments
from host_sim.emulators import serial_pty
from host_sim.emulators.serial_emulator import SerialEmulator
from protocol import gm65

DEFAULT_TAIL = gm65.TAIL_CRLF
TERMINATOR = gm65.TAILS[DEFAULT_TAIL]
ZONES = 0x100


class ModuleState:
    """The zone bits of one module and what a command frame does to them."""

    def __init__(self):
        self.zones = bytearray(ZONES)
        self.zones[gm65.ZONE_MODE] = gm65.MODE_CONTINUOUS
        self.zones[gm65.ZONE_BAUD : gm65.ZONE_BAUD + 2] = gm65.baud_value(9600)
        self.zones[gm65.ZONE_TAIL] = DEFAULT_TAIL << gm65.TAIL_SHIFT
        self.saved = bytes(self.zones)
        self.commands = 0

    @property
    def baud(self):
        return gm65.baud_of(bytes(self.zones[gm65.ZONE_BAUD : gm65.ZONE_BAUD + 2])) or 9600

    @property
    def mode(self):
        return self.zones[gm65.ZONE_MODE] & gm65.MODE_MASK

    @property
    def terminator(self):
        return gm65.TAILS[(self.zones[gm65.ZONE_TAIL] & gm65.TAIL_MASK) >> gm65.TAIL_SHIFT]

    def handle(self, ftype, addr, data):
        """The answer frame for one command, or None for one the module ignores."""
        self.commands += 1
        if ftype == gm65.T_READ and len(data) == 1 and addr + data[0] <= ZONES and data[0]:
            return gm65.answer(bytes(self.zones[addr : addr + data[0]]))
        if ftype == gm65.T_WRITE and addr + len(data) <= ZONES:
            if addr <= gm65.ZONE_BAUD + 1 < addr + len(data) or addr <= gm65.ZONE_BAUD < addr + len(data):
                new = bytearray(self.zones)
                new[addr : addr + len(data)] = data
                if gm65.baud_of(bytes(new[gm65.ZONE_BAUD : gm65.ZONE_BAUD + 2])) is None:
                    return None  # a divisor the module does not offer: ignored
            self.zones[addr : addr + len(data)] = data
            return gm65.answer()
        if ftype == gm65.T_SAVE:
            self.saved = bytes(self.zones)
            return gm65.answer()
        return None

    def power_cycle(self):
        self.zones[:] = self.saved

    def settings(self):
        return {"baud": self.baud, "mode": ["manual", "command", "continuous", "induction"][self.mode],
                "terminator": self.terminator.decode(), "commands": self.commands}


class ScannerEmulator(SerialEmulator):
    """One emulated module on a port (see the module docstring for the three ways to attach)."""

    NAME = "scanner-emulator"

    def __init__(self, port=None, terminator=None):
        self.state = ModuleState()
        if terminator is not None:
            self.state.zones[gm65.ZONE_TAIL] = gm65.TAILS.index(terminator) << gm65.TAIL_SHIFT
        self.reader = gm65.FrameReader(True)
        self.lost = 0  # command bytes lost to a baud mismatch
        super().__init__(port, baud=self.state.baud)
        if self.ser is not None:
            self.ser.reset_input_buffer()  # a module powered on now never heard what came before
        self.start()

    def line_rate(self):
        return self.state.baud  # a pty is paced at the *module's* rate

    def read(self):
        data = super().read()
        if data and self.ser is None and serial_pty.line_baud(self.slave, default=0) != self.state.baud:
            self.lost += len(data)  # the two ends disagree on the rate: nothing arrives intact
            return b""
        return data

    def received(self, data):
        for ftype, addr, payload in self.reader.feed(data):
            reply = self.state.handle(ftype, addr, payload)
            if reply is not None:
                self.write(reply)
            self.set_line_rate(self.state.baud)  # the module's side follows its new rate

    # --- sources ---

    def present(self, text):
        """Send one decoded code, as the module does after a successful read."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        self.write(data + self.state.terminator)

    def present_image(self, path):
        """Decode the QR codes in an image file and send each; returns how many were sent."""
        from host_sim.tools import qr_image

        codes = qr_image.decode_image(path)
        for code in codes:
            self.present(code)
        return len(codes)

    def webcam(self, index=0, repeat_s=2.0):
        """Read codes from a camera until interrupted; the same code is sent again after repeat_s."""
        import cv2

        from host_sim.tools import qr_image

        cam = cv2.VideoCapture(index)
        last, last_at = None, 0.0
        try:
            while not self.stopping():
                ok, frame = cam.read()
                if not ok:
                    time.sleep(0.1)
                    continue
                for code in qr_image.decode_image(frame):
                    if code != last or time.monotonic() - last_at > repeat_s:
                        self.present(code)
                        last, last_at = code, time.monotonic()
        finally:
            cam.release()


def _present_image(emu, path):
    """Present a picture's codes and say how many; a picture that cannot be read is reported, not fatal."""
    from host_sim.tools.qr_image import QRImageError

    try:
        print(json.dumps({"image": path, "codes": emu.present_image(path)}), flush=True)
    except QRImageError as e:
        print(json.dumps({"image": path, "error": str(e)}), flush=True)


def main(args):
    emu = ScannerEmulator(args.serve or args.port)
    info = {"port": emu.port}
    info.update(emu.state.settings())
    print(json.dumps(info), flush=True)
    try:
        for path in args.image or ():
            _present_image(emu, path)
        if args.webcam is not None:
            emu.webcam(args.webcam)
            return 0
        for raw in sys.stdin.buffer:  # one payload per input line, sent as its bytes (a scanner reads any)
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"image:"):  # "image:PATH" presents a picture
                _present_image(emu, os.fsdecode(line[6:]))
            elif line:
                emu.present(line)
    finally:
        print(json.dumps(emu.state.settings()), flush=True)
        emu.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--port", type=arguments.serial_port,
                        help="attach to this existing port (e.g. a virtual board's scanner pty)")
    parser.add_argument("--serve", metavar="DEVICE", type=arguments.serial_port,
                        help="serve a real serial port (USB-serial adapter)")
    parser.add_argument("--image", action="append", help="present the QR codes in this image file first")
    parser.add_argument("--webcam", type=int, nargs="?", const=0, default=None, metavar="INDEX",
                        help="read codes from a camera through OpenCV (interactive)")
