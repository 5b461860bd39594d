"""The half of a real board that MicroPython's `machine` module makes the same on every chip.

esp32s3_gate.py and rp2040_bus.py import it and keep only what differs: pins, the flash layout and
the chip's own APIs.  The clock, identity, watchdog, buses, PWRKEY line, littlefs mount and the
buzzer and relay pulses are here once.  The build deploys it beside board.mpy as machine_board.mpy.
"""

import errno
import sys
import time

import machine
import vfs
from micropython import const

_BEEP_DUTY = const(32768)

# time.time() counts from 1970 on current ports, from 2000 on old ones: convert once.
_EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


# --- flash ---------------------------------------------------------------------------------------

def _blank(part):
    buf = bytearray(64)
    for block in (0, 1):  # littlefs keeps its superblock pair in blocks 0 and 1
        part.readblocks(block, buf)
        if buf != b"\xff" * 64:
            return False
    return True


def mount_littlefs(part, mount_point, **options):
    """Mount part's littlefs2 at mount_point, formatting it only if it was never written.

    options go to vfs.VfsLfs2 (progsize=...) for both the mount and a format."""
    try:
        vfs.mount(vfs.VfsLfs2(part, **options), mount_point)
    except OSError as e:
        if e.args[0] == errno.EPERM:  # already mounted (a second call after a soft reset)
            return mount_point
        if not _blank(part):
            raise OSError("littlefs partition is corrupt and not blank; refusing to format it")
        vfs.VfsLfs2.mkfs(part, **options)
        vfs.mount(vfs.VfsLfs2(part, **options), mount_point)
    return mount_point


# --- buses -----------------------------------------------------------------------------------------

def bus_spec(specs, kind, name, board, names):
    """specs[name], or an OSError that says which buses of this kind the board has."""
    spec = specs.get(name)
    if spec is None:
        raise OSError("board %s has no %s %r (it has %s)" % (board, kind, name, ", ".join(names)))
    return spec


_i2cs = {}


def i2c(name, specs, board, names):
    """The I2C bus `name` of specs {name: (I2C id, scl GPIO, sda GPIO, frequency)}, opened once."""
    bus = _i2cs.get(name)
    if bus is None:
        bid, scl, sda, freq = bus_spec(specs, "I2C bus", name, board, names)
        bus = machine.I2C(bid, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)
        _i2cs[name] = bus
    return bus


_pwrkey = None


def modem_pwrkey(gpio):
    """The modem's PWRKEY line (through an NPN): high presses the key; the modem driver times it."""
    global _pwrkey
    if _pwrkey is None:
        _pwrkey = machine.Pin(gpio, machine.Pin.OUT, value=0)
    return _pwrkey


# --- outputs ---------------------------------------------------------------------------------------

class PulseOutputs:
    """Buzzer and relay pulses that end on one-shot timers, so neither ever waits.

    A board's Outputs adds its LEDs and display on top.  beep_timer and relay_timer are
    machine.Timer ids (-1: a virtual timer where the port has them)."""

    def __init__(self, buzzer_gpio, relay_gpio, beep_timer, relay_timer):
        Pin = machine.Pin
        self._buzzer = machine.PWM(Pin(buzzer_gpio), freq=2700, duty_u16=0)
        self._relay = Pin(relay_gpio, Pin.OUT, value=0)
        self._beep_timer = machine.Timer(beep_timer)
        self._relay_timer = machine.Timer(relay_timer)
        self._quiet_cb = self._quiet  # bound once: no allocation when a pulse is armed
        self._release_cb = self._release
        self._beep_ms = 0
        self._beep_edges = 0  # on/off edges of a beep pattern still to come

    def _quiet(self, _t):
        """End of one half of a pattern: the next beep or gap, each ms long, until none is left."""
        self._beep_edges -= 1
        if self._beep_edges <= 0:
            self._buzzer.duty_u16(0)
            return
        self._buzzer.duty_u16(_BEEP_DUTY if self._beep_edges % 2 else 0)  # odd: a beep
        self._beep_timer.init(mode=machine.Timer.ONE_SHOT, period=self._beep_ms, callback=self._quiet_cb)

    def _release(self, _t):
        self._relay.value(0)

    def beep(self, ms=80, hz=2700, times=1):
        """`times` beeps of ms each with ms of silence between them (a new pattern replaces the old)."""
        if ms <= 0 or times <= 0:
            self._beep_edges = 0
            self._buzzer.duty_u16(0)
            return
        self._beep_ms = ms
        self._beep_edges = 2 * times - 1
        self._buzzer.freq(hz)
        self._buzzer.duty_u16(_BEEP_DUTY)
        self._beep_timer.init(mode=machine.Timer.ONE_SHOT, period=ms, callback=self._quiet_cb)

    def relay(self, ms):
        """Energise the relay for ms milliseconds (a new pulse restarts the time)."""
        if ms <= 0:
            self._relay.value(0)
            return
        self._relay.value(1)
        self._relay_timer.init(mode=machine.Timer.ONE_SHOT, period=ms, callback=self._release_cb)


_outputs = None


def outputs(cls):
    """The one instance of the board's Outputs class: its pins and timers can have only one owner."""
    global _outputs
    if _outputs is None:
        _outputs = cls()
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


def secret():
    """The board secret the keys on flash are wrapped under (firmware/keystore.py).  Stock MicroPython
    reaches no hardware key: the ESP32-S3's eFuse HMAC key needs a firmware build that exposes the HMAC
    peripheral, and the RP2040 has no secret storage at all.  None: the keys stay in clear on littlefs
    (hardware/README.md, "Secrets at rest")."""
    return None


def hold_watchdog():
    """Service mode (the console's `service`): the terminal has stopped and the board waits at its REPL,
    so a timer feeds the started watchdog from now on, or it would reset the board under the technician."""
    if _wdt is None:
        return
    try:
        timer = machine.Timer(0)  # ESP32: hardware timer 0
    except ValueError:
        timer = machine.Timer(-1)  # RP2040: a software timer
    timer.init(period=1000, callback=lambda _t: _wdt.feed())  # pyright: ignore[reportOptionalMemberAccess]


def repl_interrupt(enabled):
    """Whether Ctrl-C on the USB console interrupts the program (and so opens the REPL)."""
    import micropython

    micropython.kbd_intr(3 if enabled else -1)


def runtime():
    impl = sys.implementation
    return "%s %d.%d.%d %s" % ((impl.name,) + tuple(impl.version[:3]) + (sys.platform,))
