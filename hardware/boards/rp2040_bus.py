"""RP2040 bus fare reader: a village-bus validator by the front door.

The RP2040 has only two hardware UARTs, so the QR scanner and the cellular modem take them and the
PN532 talks I2C.  No UART is left for a GPS receiver: uart("gps") raises OSError and the bus takes its
stop from the driver display (a PIO UART receiver on a free GPIO would be the way to add one).
Wiring (see hardware/README.md for the full table, levels and parts):

    function                 GPIO          peripheral
    QR scanner TX / RX       GP0 / GP1     UART0, 9600 8N1 (GM65 / GM805 default)
    modem TX / RX            GP4 / GP5     UART1, 115200 8N1
    modem PWRKEY             GP6           NPN to the modem's PWRKEY: high = key pressed
    PN532 SDA / SCL          GP8 / GP9     I2C0, 100 kHz, PN532 at 0x24 (module switches set to I2C)
    PN532 IRQ                GP10          input, reserved (the driver polls the status byte)
    relay                    GP14          NPN to an auxiliary relay (door interlock / counter)
    buzzer                   GP15          passive piezo through an NPN, PWM
    LED green / red / amber  GP16/17/18    discrete LEDs, high = on
    display                  none          text goes to the USB console (the driver's cab has none)

Flash: the storage region of the MicroPython build (rp2.Flash(), 1408 KB on a 2 MB part) is split
in three with rp2.Flash(start=, len=): the root filesystem (code), the littlefs2 data partition
mounted at /flash, and the raw journal.  The build must freeze a _boot.py that mounts only the root
slice at / (hardware/README.md, "RP2040 flash region split"); mount_flash() refuses to run on a
stock build that mounted the whole region, because the other slices would overlap it.
"""

import errno
import os

import machine
import machine_board
import rp2
from machine_board import hold_watchdog, repl_interrupt, runtime, secret, set_time, time_s, unique_id  # noqa: F401 (board interface)
from micropython import const

NAME = "rp2040_bus"
FLASH_MOUNT = "/flash"

BLOCK_SIZE = const(4096)  # erase unit (sector) of the QSPI NOR flash
PAGE_SIZE = const(256)  # program unit: rp2.Flash programs whole, aligned pages only

UART_NAMES = ("scanner", "uplink")
I2C_NAMES = ("nfc",)

# Offsets inside the storage region of rp2.Flash(), in bytes.
ROOT_OFFSET = const(0)
ROOT_SIZE = const(384 * 1024)
VFS_OFFSET = const(384 * 1024)
VFS_SIZE = const(512 * 1024)
JOURNAL_OFFSET = const(896 * 1024)
JOURNAL_SIZE = const(512 * 1024)

# name: (UART id, tx GPIO, rx GPIO, rx buffer bytes)
_UARTS = {
    "scanner": (0, 0, 1, 512),
    "uplink": (1, 4, 5, 2048),
}
# name: (I2C id, scl GPIO, sda GPIO, frequency)
_I2CS = {
    "nfc": (0, 9, 8, 100_000),
}
_PIN_MODEM_PWRKEY = const(6)
_PIN_RELAY = const(14)
_PIN_BUZZER = const(15)
_LED_PINS = {"green": 16, "red": 17, "amber": 18}
# colour -> the lamps that show it: three discrete LEDs, so blue is green + amber and purple red + amber
_LED_COLOURS = {"green": ("green",), "red": ("red",), "amber": ("amber",), "blue": ("green", "amber"),
                "purple": ("red", "amber")}

_ERASED = b"\xff" * PAGE_SIZE
_WDT_MAX_MS = const(8388)  # the RP2040 watchdog counts at most ~8.3 s


# --- flash ---------------------------------------------------------------------------------------

def _check_layout():
    """Refuse to touch the data slices while a stock _boot.py has the whole region mounted at /."""
    st = os.statvfs("/")
    if st[0] * st[2] > ROOT_SIZE:
        raise OSError("/ spans the whole flash region (stock _boot.py): flash the %s build first" % NAME)


class Region:
    """A slice of the flash storage region as a block device with NOR-flash program semantics.

    rp2.Flash programs only whole pages at page-aligned offsets; a journal appends records of any
    length.  A write that does not cover whole pages is padded with 0xFF, which leaves the bytes
    around it as they were (programming can only clear bits).
    """

    def __init__(self, offset, size):
        self._flash = rp2.Flash(start=offset, len=size)
        self._size = size
        self._blocks = size // BLOCK_SIZE
        self._page = bytearray(PAGE_SIZE)

    def _check(self, start, n):
        # rp2.Flash does not bound-check reads and writes: a stray offset would reach other data.
        if start < 0 or start + n > self._size:
            raise OSError(errno.EINVAL)

    def readblocks(self, block, buf, offset=0):
        self._check(block * BLOCK_SIZE + offset, len(buf))
        self._flash.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        mv = memoryview(buf)
        start = block * BLOCK_SIZE + (offset or 0)
        end = start + len(mv)
        self._check(start, len(mv))
        if offset is None:  # simple interface: erase the blocks first, as a plain block device would
            for i in range((len(mv) + BLOCK_SIZE - 1) // BLOCK_SIZE):
                self._flash.ioctl(6, block + i)
        if start % PAGE_SIZE == 0 and end % PAGE_SIZE == 0:
            self._flash.writeblocks(0, mv, start)
            return
        page = self._page
        pos = start - start % PAGE_SIZE
        while pos < end:
            lo = max(start, pos)
            hi = min(end, pos + PAGE_SIZE)
            page[:] = _ERASED
            page[lo - pos:hi - pos] = mv[lo - start:hi - start]
            self._flash.writeblocks(0, page, pos)
            pos += PAGE_SIZE

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._blocks
        if op == 5:  # block size
            return BLOCK_SIZE
        if op == 6:  # erase one block
            self._check(arg * BLOCK_SIZE, BLOCK_SIZE)
        return self._flash.ioctl(op, arg)  # erase; init, deinit, sync: 0


_vfs_partition = None
_journal_partition = None


def vfs_partition():
    """The littlefs2 slice mounted at /flash (an rp2.Flash: littlefs must use progsize=256)."""
    global _vfs_partition
    if _vfs_partition is None:
        _vfs_partition = rp2.Flash(start=VFS_OFFSET, len=VFS_SIZE)
    return _vfs_partition


def journal_partition():
    """The raw slice reserved for the transaction journal."""
    global _journal_partition
    if _journal_partition is None:
        _check_layout()
        _journal_partition = Region(JOURNAL_OFFSET, JOURNAL_SIZE)
    return _journal_partition


def mount_flash():
    """Mount the littlefs2 slice at /flash (formatting it only if it was never written)."""
    _check_layout()
    return machine_board.mount_littlefs(vfs_partition(), FLASH_MOUNT, progsize=PAGE_SIZE)


# --- buses -----------------------------------------------------------------------------------------

_uarts = {}


def uart(name, baudrate=9600):
    """The UART wired to a peripheral: "scanner" or "uplink" (machine.UART, timeout=0)."""
    u = _uarts.get(name)
    if u is None:
        if name == "nfc":
            raise OSError("the PN532 NFC reader of board %s is on I2C0, not a UART (the RP2040 has "
                          "two UARTs: scanner, uplink); use board.i2c('nfc')" % NAME)
        uid, tx, rx, rxbuf = machine_board.bus_spec(_UARTS, "UART", name, NAME, UART_NAMES)
        u = machine.UART(uid, baudrate=baudrate, tx=machine.Pin(tx), rx=machine.Pin(rx), rxbuf=rxbuf,
                         timeout=0)
        _uarts[name] = u
    return u


def i2c(name):
    """The I2C bus of a peripheral: "nfc" (the PN532, address 0x24)."""
    return machine_board.i2c(name, _I2CS, NAME, I2C_NAMES)


def modem_pwrkey():
    """The modem's PWRKEY line on GP6: high presses the key."""
    return machine_board.modem_pwrkey(_PIN_MODEM_PWRKEY)


# --- outputs ---------------------------------------------------------------------------------------

class Outputs(machine_board.PulseOutputs):
    """Buzzer, LEDs and relay; the display text goes to the console.  Pulses end on a one-shot timer."""

    def __init__(self):
        super().__init__(_PIN_BUZZER, _PIN_RELAY, -1, -1)
        Pin = machine.Pin
        self._leds = {}
        for color, gpio in _LED_PINS.items():
            self._leds[color] = Pin(gpio, Pin.OUT, value=0)
        self._shown = None

    def led(self, color, on):
        for lamp in _LED_COLOURS.get(color, ()):
            self._leds[lamp].value(1 if on else 0)

    def display(self, text, detail="", text_zh="", detail_zh=""):
        shown = (text, detail)
        if shown != self._shown:  # the console is slow: do not repeat an unchanged screen
            self._shown = shown
            print("[display]", text_zh, text, "|", detail_zh, detail)


def outputs():
    return machine_board.outputs(Outputs)


# --- clock, identity, watchdog -------------------------------------------------------------------

def watchdog(timeout_ms):
    """The hardware watchdog (machine.WDT, at most 8388 ms here): it cannot be stopped; feed() it."""
    return machine_board.watchdog(min(timeout_ms, _WDT_MAX_MS))
