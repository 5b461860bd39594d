"""A GM65/GM805-class QR scanner as its UART shows it: each decoded code is sent as one text line.

Two ways to attach: open an existing port (a virtual board's scanner pty, or a real USB-serial
adapter wired to a board's scanner pins), or own a new pty whose path the firmware opens.  In the
second case the emulator paces its bytes at the baud rate the firmware configured on the pty.
"""

import json
import os
import sys

import serial

from host_sim import serial_pty

TERMINATOR = b"\r\n"


class ScannerEmulator:
    def __init__(self, port, terminator=TERMINATOR):
        self.ser = serial.serial_for_url(port, baudrate=9600, timeout=0.1)
        self.terminator = terminator

    def present(self, text):
        """Send one decoded code, as the module does after a successful read."""
        data = text.encode() if isinstance(text, str) else bytes(text)
        self.ser.write(data + self.terminator)
        self.ser.flush()

    def close(self):
        self.ser.close()


def main(args):
    if args.port:
        emu = ScannerEmulator(args.port)
        send = emu.present
        print(json.dumps({"port": args.port}), flush=True)
    else:
        master, slave, path = serial_pty.open_raw_pty()
        pacer = serial_pty.Pacer(lambda: serial_pty.line_baud(slave, default=9600))

        def send(text):
            data = text.encode() + TERMINATOR
            for i in range(0, len(data), 16):
                pacer.wait(len(data[i : i + 16]))
                os.write(master, data[i : i + 16])

        print(json.dumps({"port": path}), flush=True)
    for line in sys.stdin:  # one payload per input line
        line = line.rstrip("\r\n")
        if line:
            send(line)
    return 0


def add_arguments(parser):
    parser.add_argument("--port", help="write to this existing port instead of creating a pty")
