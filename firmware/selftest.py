"""Self-tests the technician console runs (`selftest scanner|nfc|modem|flash|outputs`): real probes through
the drivers the terminal is using, each a verdict ("pass", "fail", "absent", or "done" for outputs a person
must see and hear) with the figures it measured.  Loaded only when a technician asks.

They share the devices with the running terminal: the scanner probe goes out only between codes, the
PN532 is asked while the NFC task holds off (its lock), the modem's AT commands queue behind the uplink's
(the driver's lock), so taps and uploads carry on.
"""

import asyncio
import os
import time

from protocol import link

PROBE_MS = 1500
FLASH_BYTES = 4096


def _ms(t0):
    return time.ticks_diff(time.ticks_ms(), t0)


async def scanner(t):
    """Send the baud-zone probe and wait for the module's answer (the line reader counts it)."""
    s = t.scanner
    heard = s.heard
    t0 = time.ticks_ms()
    while s.busy() and _ms(t0) < PROBE_MS:  # a code is half received: let it finish
        await asyncio.sleep_ms(20)
    s.probe()
    while s.heard == heard and _ms(t0) < PROBE_MS:
        await asyncio.sleep_ms(20)
    ok = s.heard != heard
    return {"test": "scanner", "verdict": "pass" if ok else "fail", "answer_ms": _ms(t0) if ok else None,
            "baud": s.baud, "health_bit": bool(t.health.bits & link.HEALTH_SCANNER)}


async def nfc(t):
    """GetFirmwareVersion (and the chip's set-up) through the PN532 driver, between the NFC task's polls."""
    task = getattr(t, "nfc", None)
    if task is None:
        return {"test": "nfc", "verdict": "absent", "detail": "no PN532 wired on this board"}
    from protocol import pn532

    t0 = time.ticks_ms()
    try:
        async with task.lock:
            version = await task.dev.begin()
    except pn532.Pn532Error as e:
        return {"test": "nfc", "verdict": "fail", "detail": str(e), "ms": _ms(t0)}
    return {"test": "nfc", "verdict": "pass", "ic": "0x%02X" % version[0],
            "firmware": "%d.%d" % (version[1], version[2]), "ms": _ms(t0),
            "health_bit": bool(t.health.bits & link.HEALTH_NFC)}


async def modem(t):
    """AT, signal (+CSQ) and network registration through the modem driver; a serial uplink has no modem."""
    m = t.uplink.transport
    if m is None or not hasattr(m, "command"):
        return {"test": "modem", "verdict": "absent", "detail": "uplink is a serial line" if m else "uplink not open",
                "link_up": bool(m is not None and m.connected)}
    t0 = time.ticks_ms()
    alive = await m._alive()
    if alive:
        await m._read_signal()
        registered = await m._registered()
    else:
        registered = False
    rssi = m.signal
    return {"test": "modem", "verdict": "pass" if alive and registered else "fail", "answers_at": alive,
            "registered": registered, "registration": m.registration,
            "signal_dbm": None if rssi is None else -113 + 2 * rssi, "link_up": m.connected,
            "last_error": m.last_error, "ms": _ms(t0)}


async def flash(t):
    """Write, read back and remove a block-sized file on the data flash; the journal's figures."""
    path = t.root + "/selftest.tmp"
    data = os.urandom(32) * (FLASH_BYTES // 32)
    t0 = time.ticks_ms()
    try:
        with open(path, "wb") as f:
            f.write(data)
        write_ms = _ms(t0)
        with open(path, "rb") as f:
            same = f.read() == data
        os.remove(path)
    except OSError as e:
        return {"test": "flash", "verdict": "fail", "detail": "OSError %s" % e}
    st = os.statvfs(t.root)
    j = t.journal
    return {"test": "flash", "verdict": "pass" if same else "fail", "bytes": FLASH_BYTES, "write_ms": write_ms,
            "total_ms": _ms(t0), "fs_free": st[0] * st[3], "journal_free": j.free, "journal_damaged": j.damaged}


async def outputs(t):
    """A beep, each LED and a display text: a person confirms what happened."""
    out = t.board.outputs()
    out.display("selftest", "outputs")
    out.beep(200, 2700)
    for color in ("green", "red"):
        out.led(color, True)
        await asyncio.sleep_ms(300)
        out.led(color, False)
    t.feedback.ready()
    return {"test": "outputs", "verdict": "done", "shown": ["buzzer 200 ms", "green LED", "red LED", "display"]}
