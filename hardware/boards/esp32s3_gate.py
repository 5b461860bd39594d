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
    LED red / green / blue   12 / 13 / 21  common-cathode RGB LED; red + some green = amber, red + blue = purple

PN532 over I2C instead (alternative, not the default): strap the module to I2C and wire it to
GPIO 8 / 9 next to the OLED (it answers at 0x24); then "nfc" moves from UART_NAMES to I2C_NAMES.

Flash: a custom partition table (hardware/esp32s3_gate_partitions.csv) keeps MicroPython's "vfs"
partition as the root filesystem (boot.py, main.py and the .mpy files the flash tool copies) and adds
"zfdata" (littlefs2, mounted at /flash: config, keys, log) and "journal" (raw, never a filesystem).
"""

import esp32
import machine
import machine_board
import ssd1306_text
from machine_board import hold_watchdog, repl_interrupt, runtime, secret, set_time, time_s, unique_id, watchdog  # noqa: F401 (board interface)
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

_LED_GREEN = const(1)
_LED_RED = const(2)
_LED_AMBER = const(4)
_LED_BLUE = const(8)
_LED_PURPLE = const(16)
_LED_BITS = {"green": _LED_GREEN, "red": _LED_RED, "amber": _LED_AMBER, "blue": _LED_BLUE, "purple": _LED_PURPLE}
_FULL = const(65535)
_AMBER_GREEN = const(14000)  # green share that turns full red into amber


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


def mount_flash():
    """Mount the littlefs2 partition at /flash (formatting it only if it was never written)."""
    return machine_board.mount_littlefs(vfs_partition(), FLASH_MOUNT)


# --- buses -----------------------------------------------------------------------------------------

_uarts = {}


def uart(name, baudrate=9600):
    """The UART wired to a peripheral: "scanner", "nfc" or "uplink" (machine.UART, timeout=0)."""
    u = _uarts.get(name)
    if u is None:
        uid, tx, rx, rxbuf = machine_board.bus_spec(_UARTS, "UART", name, NAME, UART_NAMES)
        try:
            u = machine.UART(uid, baudrate=baudrate, tx=tx, rx=rx, rxbuf=rxbuf, timeout=0)
        except ValueError as e:  # UART0 refused: this firmware still runs its REPL on it
            raise OSError("UART%d for %r: %s (use a build with the REPL on USB only)" % (uid, name, e))
        _uarts[name] = u
    return u


def i2c(name):
    """The I2C bus of a peripheral: "display" (the OLED)."""
    return machine_board.i2c(name, _I2CS, NAME, I2C_NAMES)


def modem_pwrkey():
    """The modem's PWRKEY line on GPIO 7: high presses the key."""
    return machine_board.modem_pwrkey(_PIN_MODEM_PWRKEY)


# --- outputs ---------------------------------------------------------------------------------------

class Outputs(machine_board.PulseOutputs):
    """Buzzer, RGB LED, gate relay and OLED.  Beep and relay pulses end on a one-shot timer."""

    def __init__(self):
        super().__init__(_PIN_BUZZER, _PIN_RELAY, _TIMER_BEEP, _TIMER_RELAY)
        Pin = machine.Pin
        self._red = machine.PWM(Pin(_PIN_LED_R), freq=1000, duty_u16=0)
        self._green = machine.PWM(Pin(_PIN_LED_G), freq=1000, duty_u16=0)
        self._blue = machine.PWM(Pin(_PIN_LED_B), freq=1000, duty_u16=0)
        self._leds = 0
        self._oled = None
        try:
            bus = i2c("display")
            if ssd1306_text.ADDRESS in bus.scan():
                self._oled = ssd1306_text.TextDisplay(bus)
        except OSError:
            pass

    def led(self, color, on):
        bit = _LED_BITS.get(color, 0)
        self._leds = (self._leds | bit) if on else (self._leds & ~bit)
        leds = self._leds
        self._red.duty_u16(_FULL if leds & (_LED_RED | _LED_AMBER | _LED_PURPLE) else 0)
        self._green.duty_u16(_FULL if leds & _LED_GREEN else (_AMBER_GREEN if leds & _LED_AMBER else 0))
        self._blue.duty_u16(_FULL if leds & (_LED_BLUE | _LED_PURPLE) else 0)

    def display(self, text, detail="", text_zh="", detail_zh=""):
        if self._oled is not None:
            try:
                self._oled.show(text, detail, text_zh, detail_zh)
                return
            except OSError:  # unplugged or a bus error: fall back to the console
                self._oled = None
        print("[display]", text_zh, text, "|", detail_zh, detail)


def outputs():
    return machine_board.outputs(Outputs)
