"""The virtual board: the MicroPython unix port, wired by `python -m host_sim vboard`.

Every board module offers the same small interface (see hardware/README.md); firmware asks it for
"the scanner UART" or "the journal partition" and never learns which board it runs on.  Here the
wiring comes from environment variables the launcher sets:

    ZF_FLASH            path of the flash image file (created and padded with 0xFF if short)
    ZF_UART_SCANNER     pty path of the QR scanner UART (likewise ZF_UART_NFC, ZF_UART_UPLINK, ZF_UART_GPS,
                        ZF_UART_DRIVER: the bus's driver display)
    ZF_EVENTS           pty path where output events (buzzer, LEDs, relay, display) are written
    ZF_UID              the board's unique id (hex), like machine.unique_id() on a chip
    ZF_MODEM_PWRKEY     optional: pty path of the modem emulator's PWRKEY input (modem_pwrkey())
    ZF_JOURNAL_KB       optional: size of the journal partition in KB (default 512), like a board
                        with a larger flash chip (the drain benchmark buffers 10 000 records)
    ZF_TOKEN_KEY        optional: "<version>:<hex key>", the fleet token key the board ships with when
                        /flash/keys/token is absent (a development board's factory key, version 0, so
                        that any key provisioning or the collector delivers replaces it)
    ZF_SECRET           optional: the board secret (64 hex digits), outside the filesystem like a chip's
                        eFuse key: the launcher keeps it beside the image (<image>.secret); secret()
    ZF_SEAL_KEY         optional: the collector's RSA modulus (512 hex digits) the board ships with when
                        /flash/keys/seal.pub is absent (the development collector's key; provisioning
                        writes the real one)
    ZF_CLOCK            optional: path of a file holding the simulator's clock (epoch seconds, text) that
                        the host rewrites as its virtual time advances; time_s() reads it and set_time()
                        leaves it alone (the host owns the clock), so records carry simulated time

The image is laid out like a real board's flash: a littlefs2 partition mounted at /flash and a raw
partition for the transaction journal.  Writes go straight to the file with no user-space buffer, so
whatever littlefs synced survives kill -9 of this process: that is the virtual power cut.
"""

import io
import os
import select
import sys
import termios
import time

import vfs
from micropython import const

NAME = "virtual"
FLASH_MOUNT = "/flash"

BLOCK_SIZE = const(4096)
PAGE_SIZE = const(256)
# Partition table of the image, in bytes: (offset, size).  The littlefs partition is as large as the
# ESP32-S3 gate's (4 MB): a county's deny list (200 000 cards, 1.2 MB) fits with room for a merge.
VFS_OFFSET = const(0)
VFS_SIZE = const(4096 * 1024)
JOURNAL_OFFSET = const(4096 * 1024)
JOURNAL_SIZE = const(512 * 1024)
IMAGE_SIZE = const(4608 * 1024)

UART_NAMES = ("scanner", "nfc", "uplink")

_VMIN = const(6)
_VTIME = const(5)
_GET_FILENO = const(10)
_ERASED = b"\xff" * PAGE_SIZE

_image = None


def _open_image():
    """Open the flash image once, padding a new or short file with erased (0xFF) bytes."""
    global _image
    if _image is None:
        path = os.getenv("ZF_FLASH")
        if not path:
            raise OSError("ZF_FLASH is not set: start the board with `python -m host_sim vboard`")
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        size = f.seek(0, 2)
        while size < max(IMAGE_SIZE, JOURNAL_OFFSET + _journal_size()):
            size += f.write(_ERASED)
        _image = f
    return _image


class Partition:
    """A region of the image with the block-device protocol (like esp32.Partition, rp2.Flash).

    Programs behave like NOR flash: a program can only clear bits (new = old AND data), an erase sets a
    whole block back to 0xFF.  Counters let benchmarks see how many programs and erases a job cost.
    """

    def __init__(self, f, offset, size):
        self._f = f
        self._offset = offset
        self._blocks = size // BLOCK_SIZE
        self._scratch = bytearray(PAGE_SIZE)
        self.programs = 0
        self.erases = 0

    def readblocks(self, block, buf, offset=0):
        self._f.seek(self._offset + block * BLOCK_SIZE + offset)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Simple interface: erase the blocks first, as a plain block device would.
            for i in range((len(buf) + BLOCK_SIZE - 1) // BLOCK_SIZE):
                self.ioctl(6, block + i)
            offset = 0
        pos = self._offset + block * BLOCK_SIZE + offset
        mv = memoryview(buf)
        scratch = self._scratch
        done = 0
        while done < len(mv):
            n = min(PAGE_SIZE, len(mv) - done)
            old = memoryview(scratch)[:n]
            self._f.seek(pos + done)
            self._f.readinto(old)
            for i in range(n):
                scratch[i] &= mv[done + i]
            self._f.seek(pos + done)
            self._f.write(old)
            done += n
        self.programs += 1

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._blocks
        if op == 5:  # block size
            return BLOCK_SIZE
        if op == 6:  # erase one block
            self._f.seek(self._offset + arg * BLOCK_SIZE)
            for _ in range(BLOCK_SIZE // PAGE_SIZE):
                self._f.write(_ERASED)
            self.erases += 1
            return 0
        return 0  # init, deinit, sync: nothing to do, writes are already in the file


_vfs_partition = None
_journal_partition = None


def vfs_partition():
    global _vfs_partition
    if _vfs_partition is None:
        _vfs_partition = Partition(_open_image(), VFS_OFFSET, VFS_SIZE)
    return _vfs_partition


def _journal_size():
    kb = os.getenv("ZF_JOURNAL_KB")
    return int(kb) * 1024 if kb else JOURNAL_SIZE


def journal_partition():
    """The raw partition reserved for the transaction journal."""
    global _journal_partition
    if _journal_partition is None:
        _journal_partition = Partition(_open_image(), JOURNAL_OFFSET, _journal_size())
    return _journal_partition


def _blank(part):
    buf = bytearray(64)
    part.readblocks(0, buf)
    return buf == bytearray(b"\xff" * 64)


def mount_flash():
    """Mount the littlefs2 partition at /flash (formatting it only if it was never written)."""
    # The stubs type block devices nominally (AbstractBlockDev); MicroPython accepts any object with
    # readblocks/writeblocks/ioctl, which is what Partition is.
    part = vfs_partition()
    try:
        vfs.mount(vfs.VfsLfs2(part), FLASH_MOUNT)  # pyright: ignore[reportArgumentType]
    except OSError as e:
        if e.args[0] == 1:  # EPERM: already mounted (a second call after a soft start)
            return FLASH_MOUNT
        if not _blank(part):
            raise OSError("littlefs partition is corrupt and not blank; refusing to format it")
        vfs.VfsLfs2.mkfs(part)  # pyright: ignore[reportArgumentType]
        vfs.mount(vfs.VfsLfs2(part), FLASH_MOUNT)  # pyright: ignore[reportArgumentType]
    spec = os.getenv("ZF_TOKEN_KEY")
    if spec:
        version, key = spec.split(":")
        _factory_key("token", int(version).to_bytes(4, "little") + bytes.fromhex(key))
    modulus = os.getenv("ZF_SEAL_KEY")
    if modulus:
        _factory_key("seal.pub", (modulus + "\n").encode())
    return FLASH_MOUNT


def _factory_key(name, data):
    """Install a key the board ships with as /flash/keys/<name> unless a key is there already: the token
    key (firmware/identity.py's format) or the collector's seal key (firmware/sealing.py's)."""
    path = FLASH_MOUNT + "/keys/" + name
    try:
        os.stat(path)
        return
    except OSError:
        pass
    try:
        os.mkdir(FLASH_MOUNT + "/keys")
    except OSError:
        pass
    with open(path, "wb") as f:
        f.write(data)


class UART(io.IOBase):
    """One peripheral UART: a pty in raw mode, read without blocking.

    VMIN=0 makes a read return what has arrived instead of waiting for a full buffer, which is how
    machine.UART(timeout=0) behaves; asyncio polls it through fileno().  The baud rate is set on the
    pty so the host end can read it and pace its bytes like a real line.
    """

    def __init__(self, name, baudrate=9600):
        path = os.getenv("ZF_UART_" + name.upper())
        if not path:
            raise OSError("no pty wired for UART " + name)
        self.name = name
        self._f = open(path, "r+b")
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
        self.init(baudrate)

    def init(self, baudrate=9600, **_kw):
        fd = self._f.fileno()
        termios.setraw(fd)
        attr = termios.tcgetattr(fd)
        attr[6][_VMIN] = 0
        attr[6][_VTIME] = 0
        speed = getattr(termios, "B%d" % baudrate, None)
        if speed is not None:
            attr[4] = speed
            attr[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attr)
        self.baudrate = baudrate

    def fileno(self):
        return self._f.fileno()

    def any(self):
        return 1 if self._poll.poll(0) else 0

    def read(self, n=-1):
        if not self.any():
            return None
        return self._f.read(n) if n >= 0 else self._f.read()

    def readinto(self, buf, n=-1):
        if not self.any():
            return None
        if n >= 0:
            return self._f.readinto(memoryview(buf)[:n])
        return self._f.readinto(buf)

    def write(self, buf):
        return self._f.write(buf)

    def ioctl(self, req, arg):
        if req == _GET_FILENO:  # lets select.poll (and so asyncio) wait on the pty
            return self._f.fileno()
        return 0

    def close(self):
        self._f.close()


_uarts = {}


def uart(name, baudrate=9600):
    """The UART wired to a peripheral: "scanner", "nfc", "uplink", "gps" or "driver"."""
    u = _uarts.get(name)
    if u is None:
        u = UART(name, baudrate)
        _uarts[name] = u
    return u


class Outputs:
    """Buzzer, LEDs, gate relay and display, reported to the host as one JSON line per change."""

    def __init__(self):
        path = os.getenv("ZF_EVENTS")
        self._f = open(path, "wb") if path else None
        if self._f is not None:
            termios.setraw(self._f.fileno())

    def _emit(self, kind, fields):
        line = '{"t":%d,"out":"%s"%s}\n' % (time.ticks_ms(), kind, fields)
        if self._f is None:
            sys.stdout.write("[out] " + line)
        else:
            self._f.write(line.encode())

    def beep(self, ms=80, hz=2700, times=1):
        """`times` beeps of ms each, ms apart (one event: the host sees the pattern whole)."""
        self._emit("buzzer", ',"ms":%d,"hz":%d,"times":%d' % (ms, hz, times))

    def led(self, color, on):
        self._emit("led", ',"color":"%s","on":%s' % (color, "true" if on else "false"))

    def relay(self, ms):
        self._emit("relay", ',"ms":%d' % ms)

    def display(self, text, detail="", text_zh="", detail_zh=""):
        """English title and detail, and the Chinese ones shown above each (UTF-8 in the JSON line)."""
        self._emit("display", ',"text":%s,"detail":%s,"text_zh":%s,"detail_zh":%s'
                   % (_json_str(text), _json_str(detail), _json_str(text_zh), _json_str(detail_zh)))


def _json_str(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_outputs = None


def outputs():
    global _outputs
    if _outputs is None:
        _outputs = Outputs()
    return _outputs


_clock_offset = 0
_clock_path = os.getenv("ZF_CLOCK")


def _virtual_now(path):
    """The simulator's clock: the host replaces the file whole (rename), so a read sees one value."""
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def time_s():
    """Wall-clock seconds since 1970 from the board's RTC (host time plus any sync offset), or the
    simulator's clock when the host drives one (ZF_CLOCK)."""
    if _clock_path:
        return _virtual_now(_clock_path)
    return time.time() + _clock_offset


def set_time(epoch_s):
    global _clock_offset
    if _clock_path:
        return  # the simulator owns the clock: a collector's time sync must not move it
    _clock_offset = epoch_s - time.time()


def unique_id():
    uid = os.getenv("ZF_UID") or "5642000001"
    return bytes(int(uid[i : i + 2], 16) for i in range(0, len(uid), 2))


class _HostLine:
    """An output pin whose level goes to the host over a pty: one line per change, the level and the
    board's millisecond clock ("1 123456\n"), so the host measures pulse widths on the board's time,
    however late it reads them."""

    def __init__(self, path):
        self._f = open(path, "wb")
        termios.setraw(self._f.fileno())
        self._v = 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        self._f.write(("%d %d\n" % (self._v, time.ticks_ms())).encode())
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


_pwrkey = None


def modem_pwrkey():
    """The modem's PWRKEY line, when the launcher wired one to a modem emulator (ZF_MODEM_PWRKEY: the
    pty of `host_sim emulate modem --pwrkey`), else None: the driver then resets with AT+CFUN=1,1."""
    global _pwrkey
    if _pwrkey is None:
        path = os.getenv("ZF_MODEM_PWRKEY")
        if path:
            _pwrkey = _HostLine(path)
    return _pwrkey


class _NoWatchdog:
    def feed(self):
        pass


def watchdog(timeout_ms):
    """The unix port has no hardware watchdog; the launcher restarts a board whose process exits."""
    return _NoWatchdog()


def secret():
    """The board secret the keys on flash are wrapped under (firmware/keystore.py), or None."""
    spec = os.getenv("ZF_SECRET")
    return bytes.fromhex(spec) if spec else None


def hold_watchdog():
    """Service mode: nothing to hold (no hardware watchdog here)."""


_ISIG = const(1)  # termios c_lflag bit (Linux): the tty turns a Ctrl-C byte into SIGINT


def repl_interrupt(enabled):
    """Whether a Ctrl-C from the console interrupts the program (and so opens the REPL).  The console pty
    is this process's terminal: with ISIG off, Ctrl-C is a plain byte, as with micropython.kbd_intr(-1) on
    a chip's USB REPL (the unix port's kbd_intr(-1) would leave SIGINT to kill the process instead)."""
    try:
        attr = termios.tcgetattr(0)
    except OSError:  # not started on a terminal (a test's pipe): nothing to lock
        return
    attr[3] = (attr[3] | _ISIG) if enabled else (attr[3] & ~_ISIG)
    termios.tcsetattr(0, termios.TCSANOW, attr)


def runtime():
    impl = sys.implementation
    return "%s %d.%d.%d %s" % ((impl.name,) + tuple(impl.version[:3]) + (sys.platform,))
