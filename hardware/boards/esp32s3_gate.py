"""ESP32-S3 gate board: a scenic-area turnstile or school-bus door reader.

Module: ESP32-S3-WROOM-1-N16R8 (16 MB flash, 8 MB octal PSRAM, so GPIO 35-37 are taken).  Wiring
(see hardware/README.md for the full table, levels and parts):

    function                 GPIO          peripheral
    QR scanner TX / RX       17 / 18       UART1, 9600 8N1 (GM65 / GM805 default)
    PN532 HSU TX / RX        15 / 16       UART2, 115200 8N1 (module switches set to HSU)
    modem TX / RX            5 / 6         UART0 moved off GPIO43/44 (needs a build whose REPL is USB only)
    modem PWRKEY             7             NPN to the modem's PWRKEY: high = key pressed
    I2C0 SDA / SCL           8 / 9         SSD1306 OLED at 0x3C, 400 kHz
    relay                    10            NPN/optocoupler to the turnstile relay coil, high = energised
    buzzer                   11            passive piezo through an NPN, PWM
    LED red / green / blue   12 / 13 / 21  common-cathode RGB LED; red + some green = amber

PN532 over I2C instead (alternative, not the default): strap the module to I2C and wire it to
GPIO 8 / 9 next to the OLED (it answers at 0x24); then "nfc" moves from UART_NAMES to I2C_NAMES.

Flash: a custom partition table (hardware/esp32s3_gate_partitions.csv) keeps MicroPython's "vfs"
partition as the root filesystem (boot.py, main.py and the .mpy files the flash tool copies) and adds
"zfdata" (littlefs2, mounted at /flash: config, keys, log) and "journal" (raw, never a filesystem).
"""

import errno
import sys
import time

import esp32
import framebuf
import machine
import vfs
from micropython import const

NAME = "esp32s3_gate"
FLASH_MOUNT = "/flash"

BLOCK_SIZE = const(4096)  # erase unit of the NOR flash and block size of esp32.Partition
PAGE_SIZE = const(256)  # program unit of the NOR flash

UART_NAMES = ("scanner", "nfc", "uplink")
I2C_NAMES = ("display",)

VFS_LABEL = "zfdata"
JOURNAL_LABEL = "journal"

# name: (UART id, tx GPIO, rx GPIO, rx buffer bytes)
_UARTS = {
    "scanner": (1, 17, 18, 512),
    "nfc": (2, 15, 16, 512),
    "uplink": (0, 5, 6, 2048),
}
# name: (I2C id, scl GPIO, sda GPIO, frequency)
_I2CS = {
    "display": (0, 9, 8, 400_000),
}
_PIN_MODEM_PWRKEY = const(7)
_PIN_RELAY = const(10)
_PIN_BUZZER = const(11)
_PIN_LED_R = const(12)
_PIN_LED_G = const(13)
_PIN_LED_B = const(21)

_TIMER_BEEP = const(0)  # hardware timers: the S3 has four (0-3)
_TIMER_RELAY = const(1)

_OLED_ADDR = const(0x3C)
_OLED_W = const(128)
_OLED_H = const(64)
_OLED_COLS = const(16)  # 8x8 font

_LED_GREEN = const(1)
_LED_RED = const(2)
_LED_AMBER = const(4)
_LED_BITS = {"green": _LED_GREEN, "red": _LED_RED, "amber": _LED_AMBER}
_FULL = const(65535)
_AMBER_GREEN = const(14000)  # green share that turns full red into amber

# time.time() counts from 1970 on current ports, from 2000 on old ones: convert once.
_EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


# --- flash ---------------------------------------------------------------------------------------

def _partition(label):
    found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    if not found:
        raise OSError("no %r partition: flash hardware/esp32s3_gate_partitions.csv (see hardware/README.md)"
                      % label)
    part = found[0]  # type: esp32.Partition
    return part


_vfs_partition = None
_journal_partition = None


def vfs_partition():
    """The partition holding the littlefs2 filesystem mounted at /flash."""
    global _vfs_partition
    if _vfs_partition is None:
        _vfs_partition = _partition(VFS_LABEL)
    return _vfs_partition


def journal_partition():
    """The raw partition reserved for the transaction journal (esp32.Partition: block device)."""
    global _journal_partition
    if _journal_partition is None:
        _journal_partition = _partition(JOURNAL_LABEL)
    return _journal_partition


def _blank(part):
    buf = bytearray(64)
    for block in (0, 1):  # littlefs keeps its superblock pair in blocks 0 and 1
        part.readblocks(block, buf)
        if buf != b"\xff" * 64:
            return False
    return True


def mount_flash():
    """Mount the littlefs2 partition at /flash (formatting it only if it was never written)."""
    part = vfs_partition()
    try:
        vfs.mount(vfs.VfsLfs2(part), FLASH_MOUNT)
    except OSError as e:
        if e.args[0] == errno.EPERM:  # already mounted (a second call after a soft reset)
            return FLASH_MOUNT
        if not _blank(part):
            raise OSError("littlefs partition is corrupt and not blank; refusing to format it")
        vfs.VfsLfs2.mkfs(part)
        vfs.mount(vfs.VfsLfs2(part), FLASH_MOUNT)
    return FLASH_MOUNT


# --- buses -----------------------------------------------------------------------------------------

_uarts = {}


def uart(name, baudrate=9600):
    """The UART wired to a peripheral: "scanner", "nfc" or "uplink" (machine.UART, timeout=0)."""
    u = _uarts.get(name)
    if u is None:
        spec = _UARTS.get(name)
        if spec is None:
            raise OSError("board %s has no UART %r (it has %s)" % (NAME, name, ", ".join(UART_NAMES)))
        uid, tx, rx, rxbuf = spec
        try:
            u = machine.UART(uid, baudrate=baudrate, tx=tx, rx=rx, rxbuf=rxbuf, timeout=0)
        except ValueError as e:  # UART0 refused: this firmware still runs its REPL on it
            raise OSError("UART%d for %r: %s (use a build with the REPL on USB only)" % (uid, name, e))
        _uarts[name] = u
    return u


_i2cs = {}


def i2c(name):
    """The I2C bus of a peripheral: "display" (the OLED)."""
    bus = _i2cs.get(name)
    if bus is None:
        spec = _I2CS.get(name)
        if spec is None:
            raise OSError("board %s has no I2C bus %r (it has %s)" % (NAME, name, ", ".join(I2C_NAMES)))
        bid, scl, sda, freq = spec
        bus = machine.I2C(bid, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)
        _i2cs[name] = bus
    return bus


_pwrkey = None


def modem_pwrkey():
    """The modem's PWRKEY line (through an NPN): high presses the key; the modem driver times it."""
    global _pwrkey
    if _pwrkey is None:
        _pwrkey = machine.Pin(_PIN_MODEM_PWRKEY, machine.Pin.OUT, value=0)
    return _pwrkey


# --- outputs ---------------------------------------------------------------------------------------

class _Oled:
    """SSD1306 128x64 over I2C, text only: 16 columns x 8 rows of framebuf's built-in 8x8 font."""

    # display off, clock, multiplex 64, offset 0, start line 0, charge pump on, horizontal
    # addressing, segment remap, COM scan down, COM pins, contrast, precharge, VCOMH, resume, normal, on
    _INIT = b"\xae\xd5\x80\xa8\x3f\xd3\x00\x40\x8d\x14\x20\x00\xa1\xc8\xda\x12\x81\xcf\xd9\xf1\xdb\x40\xa4\xa6\xaf"
    _WINDOW = b"\x21\x00\x7f\x22\x00\x07"  # columns 0-127, pages 0-7

    def __init__(self, bus):
        self._bus = bus
        self._cmd = bytearray(2)  # control byte 0x00 (a command follows), command byte
        self._buf = bytearray(1 + _OLED_W * _OLED_H // 8)
        self._buf[0] = 0x40  # control byte: display data follows
        self._fb = framebuf.FrameBuffer(memoryview(self._buf)[1:], _OLED_W, _OLED_H, framebuf.MONO_VLSB)
        self._commands(self._INIT)

    def _commands(self, cmds):
        for c in cmds:
            self._cmd[1] = c
            self._bus.writeto(_OLED_ADDR, self._cmd)

    def show(self, text, detail):
        fb = self._fb
        fb.fill(0)
        row = _put(fb, text, 0, 2)  # title: up to two rows
        _put(fb, detail, row + 1, 8 - row - 1)
        self._commands(self._WINDOW)
        self._bus.writeto(_OLED_ADDR, self._buf)


def _put(fb, s, row, rows):
    """Draw s from `row`, wrapped at 16 columns, on at most `rows` rows; returns the next row."""
    i = 0
    while rows > 0 and i < len(s):
        fb.text(s[i:i + _OLED_COLS], 0, row * 8, 1)  # characters outside ASCII draw as a block
        i += _OLED_COLS
        row += 1
        rows -= 1
    return row


class Outputs:
    """Buzzer, RGB LED, gate relay and OLED.  Beep and relay pulses end on a one-shot timer."""

    def __init__(self):
        Pin = machine.Pin
        self._buzzer = machine.PWM(Pin(_PIN_BUZZER), freq=2700, duty_u16=0)
        self._red = machine.PWM(Pin(_PIN_LED_R), freq=1000, duty_u16=0)
        self._green = machine.PWM(Pin(_PIN_LED_G), freq=1000, duty_u16=0)
        Pin(_PIN_LED_B, Pin.OUT, value=0)  # blue is fitted but unused: kept dark
        self._relay = Pin(_PIN_RELAY, Pin.OUT, value=0)
        self._beep_timer = machine.Timer(_TIMER_BEEP)
        self._relay_timer = machine.Timer(_TIMER_RELAY)
        self._quiet_cb = self._quiet  # bound once: no allocation when a pulse is armed
        self._release_cb = self._release
        self._leds = 0
        self._oled = None
        try:
            bus = i2c("display")
            if _OLED_ADDR in bus.scan():
                self._oled = _Oled(bus)
        except OSError:
            pass

    def _quiet(self, _t):
        self._buzzer.duty_u16(0)

    def _release(self, _t):
        self._relay.value(0)

    def beep(self, ms=80, hz=2700):
        if ms <= 0:
            self._buzzer.duty_u16(0)
            return
        self._buzzer.freq(hz)
        self._buzzer.duty_u16(32768)
        self._beep_timer.init(mode=machine.Timer.ONE_SHOT, period=ms, callback=self._quiet_cb)

    def led(self, color, on):
        bit = _LED_BITS.get(color, 0)
        self._leds = (self._leds | bit) if on else (self._leds & ~bit)
        leds = self._leds
        self._red.duty_u16(_FULL if leds & (_LED_RED | _LED_AMBER) else 0)
        self._green.duty_u16(_FULL if leds & _LED_GREEN else (_AMBER_GREEN if leds & _LED_AMBER else 0))

    def relay(self, ms):
        """Energise the gate relay for ms milliseconds (a new pulse restarts the time)."""
        if ms <= 0:
            self._relay.value(0)
            return
        self._relay.value(1)
        self._relay_timer.init(mode=machine.Timer.ONE_SHOT, period=ms, callback=self._release_cb)

    def display(self, text, detail=""):
        if self._oled is not None:
            try:
                self._oled.show(text, detail)
                return
            except OSError:  # unplugged or a bus error: fall back to the console
                self._oled = None
        print("[display]", text, "|", detail)


_outputs = None


def outputs():
    global _outputs
    if _outputs is None:
        _outputs = Outputs()
    return _outputs


# --- clock, identity, watchdog -------------------------------------------------------------------

def time_s():
    """Wall-clock seconds since 1970 from the RTC (valid once set_time ran since power-up)."""
    return time.time() + _EPOCH_OFFSET


def set_time(epoch_s):
    t = time.gmtime(int(epoch_s) - _EPOCH_OFFSET)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


def unique_id():
    return machine.unique_id()


_wdt = None


def watchdog(timeout_ms):
    """The hardware watchdog (machine.WDT): once started it cannot be stopped; feed() it."""
    global _wdt
    if _wdt is None:
        _wdt = machine.WDT(timeout=timeout_ms)
    return _wdt


def runtime():
    impl = sys.implementation
    return "%s %d.%d.%d %s" % ((impl.name,) + tuple(impl.version[:3]) + (sys.platform,))
