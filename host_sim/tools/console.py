"""`python -m host_sim console PORT --key TECHKEY [--exec CMD]`: the technician console client.

Logs in to the terminal's service shell (firmware/console.py) on its console port with a technician key
(`bundle techkey`): sends the certificate, signs the terminal's one-time challenge with the key, then runs
commands.  With --exec it runs one command and prints its data lines (the JSON of `status`, `queue`,
`config`, ...); exit 0 when the terminal answered "@ok", 1 with the terminal's reason otherwise.  Without
it, an interactive prompt with history (~/.zhifu_console_history) and tab completion of the commands.

Replies are the lines that start with "@" (firmware/console.py); the terminal's own console lines printed
meanwhile are skipped with --exec and shown dimmed ("  | ...") at the prompt.
"""

import base64
import os
import sys
import time

import serial
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim import arguments
from host_sim.tools import bundle
from protocol import techcert

REPLY_TIMEOUT_S = 15.0
REPL_TIMEOUT_S = 10.0
COMMANDS = ("status", "queue", "upload now", "config", "deny check ", "selftest scanner", "selftest nfc",
            "selftest modem", "selftest flash", "selftest outputs", "log ", "time", "reboot", "service", "logout",
            "help")
HISTORY = os.path.expanduser("~/.zhifu_console_history")


class ConsoleError(Exception):
    pass


class Session:
    """A console connection: send a line, read its reply (data lines, then @ok/@err)."""

    def __init__(self, port, timeout=REPLY_TIMEOUT_S, echo_other=None):
        self.ser = serial.serial_for_url(port, baudrate=115200, timeout=0.1)
        self.timeout = timeout
        self.echo_other = echo_other  # called with the terminal's other console lines
        self._buf = b""

    def close(self):
        self.ser.close()

    def _readline(self, deadline):
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                return None
            self._buf += self.ser.read(max(1, self.ser.in_waiting))  # what has come, at once
        line, self._buf = self._buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def command(self, line):
        """(ok, final text, data lines) of one command."""
        self.ser.write(line.encode() + b"\n")
        self.ser.flush()
        data = []
        deadline = time.monotonic() + self.timeout
        while True:
            text = self._readline(deadline)
            if text is None:
                raise ConsoleError("no answer from the terminal within %d s (is it running its firmware?)"
                                   % self.timeout)
            if text.startswith("@ "):
                data.append(text[2:])
            elif text == "@ok" or text.startswith("@ok "):
                return True, text[4:], data
            elif text.startswith("@err"):
                return False, text[5:], data
            elif self.echo_other is not None and text.strip():
                self.echo_other(text)

    def settle(self):
        """End any line a previous client left half written, and drop what the terminal said before now."""
        self.ser.write(b"\n")
        self.ser.flush()
        time.sleep(0.3)
        self.ser.reset_input_buffer()
        self._buf = b""

    def login(self, key, cert):
        """Certificate, challenge, signed response; the terminal's welcome text, or ConsoleError."""
        ok, text, data = self.command("login " + base64.b64encode(cert).decode())
        if not ok:
            raise ConsoleError(text)
        words = data[-1].split() if data else []
        if len(words) != 3 or words[0] != "challenge":
            raise ConsoleError("unexpected answer to login: %r" % (data,))
        try:
            challenge, terminal = bytes.fromhex(words[1]), bytes.fromhex(words[2])
        except ValueError:
            raise ConsoleError("unexpected challenge %r" % data[-1]) from None
        signature = key.sign(techcert.challenge_message(terminal, challenge), padding.PKCS1v15(), hashes.SHA256())
        ok, text, _ = self.command("auth " + signature.hex())
        if not ok:
            raise ConsoleError(text)
        return text


def open_service(port, key_path, timeout=REPL_TIMEOUT_S):
    """Log in with the technician key at `key_path` and open service mode: the terminal stops and its REPL
    answers (mpremote works) until the board resets.  Raises ConsoleError (or ValueError for the key file)."""
    key, cert = bundle.load_techkey(key_path)
    session = Session(port)
    try:
        session.settle()
        session.login(key, cert)
        ok, text, _ = session.command("service")
        if not ok:
            raise ConsoleError(text)
        deadline = time.monotonic() + timeout
        while True:  # the REPL's prompt: from now on the port is the REPL's
            line = session._buf.decode("utf-8", "replace")
            if ">>>" in line:
                return
            if time.monotonic() > deadline:
                raise ConsoleError("service mode: no REPL prompt within %d s" % timeout)
            session._buf += session.ser.read(4096)
    finally:
        session.close()


def _interactive(session):
    import readline

    try:
        readline.read_history_file(HISTORY)
    except OSError:
        pass

    def complete(text, state):
        line = readline.get_line_buffer()
        hits = [c for c in COMMANDS if c.startswith(line)]
        return hits[state][len(line) - len(text):] if state < len(hits) else None

    readline.set_completer_delims("")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    try:
        while True:
            try:
                line = input("zhifu> ").strip()
            except EOFError:
                print()
                break
            if not line:
                continue
            ok, text, data = session.command(line)
            for d in data:
                print(d)
            print(("ok " if ok else "error: ") + text if text or not ok else "ok")
            if line in ("logout", "service", "reboot") and ok:
                break
    finally:
        try:
            readline.write_history_file(HISTORY)
        except OSError:
            pass


def main(args):
    try:
        key, cert = bundle.load_techkey(args.key)
    except (OSError, ValueError) as e:
        print("console: %s" % e, file=sys.stderr)
        return 2
    try:
        other = None if args.exec else (lambda text: print("  | " + text))
        session = Session(args.port, timeout=args.timeout, echo_other=other)
    except (serial.SerialException, OSError) as e:
        print("console: cannot open %s: %s" % (args.port, e), file=sys.stderr)
        return 2
    try:
        session.settle()
        welcome = session.login(key, cert)
        if args.exec is None:
            print("logged in: " + welcome)
            _interactive(session)
            return 0
        ok, text, data = session.command(args.exec)
        for d in data:
            print(d)
        if not ok:
            print("console: %s" % text, file=sys.stderr)
            return 1
        return 0
    except ConsoleError as e:
        print("console: %s" % e, file=sys.stderr)
        return 1
    except (serial.SerialException, OSError) as e:
        print("console: lost the port: %s" % e, file=sys.stderr)
        return 1
    finally:
        session.close()


def add_arguments(parser):
    parser.add_argument("port", type=arguments.serial_port,
                        help="the terminal's console port (USB serial or a vboard console)")
    parser.add_argument("--key", required=True, type=arguments.existing_file,
                        help="technician key file (`bundle techkey`)")
    parser.add_argument("--exec", metavar="CMD", help="run one command, print its output (JSON for status) and exit")
    parser.add_argument("--timeout", type=float, default=REPLY_TIMEOUT_S, help="seconds to wait for each answer")

