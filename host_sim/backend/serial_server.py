"""The collector on a serial port or pty: one terminal at line rate, committed per frame.

A device that goes away (a USB adapter pulled, a virtual board stopped) is waited for: its path is
tried again every REOPEN_S seconds, logged once when lost and once when back, and served with a fresh
session (the terminal starts a new handshake and sends again what was not acknowledged).  A database
out of reach (PostgreSQL restarting) keeps the link: frames are not acknowledged until it answers."""

import logging
import sqlite3

log = logging.getLogger("collector")

REOPEN_S = 0.5


def _open(port):
    import serial

    return serial.serial_for_url(port, baudrate=115200, timeout=0.05)


def serve_serial(port, store, stop, capture=None, backoffice=None, reopen=REOPEN_S, recorder=None):
    """Blocking loop for a serial port or pty (pyserial URL or path); returns the last Session at stop.
    `capture`, a bytearray, receives a copy of every byte the terminal sent (tests, diagnosis);
    `recorder`, a capture Recorder (host_sim/sim/capture.py), both directions, a file per device opening."""
    import serial

    from host_sim.backend.host_session import Session
    from host_sim.sim import capture as capture_mod

    ser = _open(port)
    session = Session(store, backoffice=backoffice)
    link = recorder.open("serial", port) if recorder is not None else None
    try:
        while not stop.is_set():
            if ser is None:
                try:
                    ser = _open(port)
                except (serial.SerialException, OSError, ValueError):
                    stop.wait(reopen)
                    continue
                log.info("serial device %s is back: serving it", port)
                session = Session(store, backoffice=backoffice)
                link = recorder.open("serial", port) if recorder is not None else None
            try:
                data = ser.read(512)
                if capture is not None:
                    capture += data
                if link is not None:
                    link.write(capture_mod.TERMINAL, data)
                reply = session.receive(data)  # also when nothing came: retransmission timers
                if reply:
                    if link is not None:
                        link.write(capture_mod.HOST, reply)
                    ser.write(reply)
                if session.finished:  # ERROR 4/5 sent or BYE received: the next HELLO starts afresh
                    session = Session(store, backoffice=backoffice)
            except (serial.SerialException, OSError) as e:
                log.warning("serial device %s lost (%s): waiting for it to come back", port, e)
                ser.close()
                ser = None
                if link is not None:
                    link.close()
                    link = None
            except sqlite3.Error as e:  # the database out of reach: nothing acknowledged, the link kept
                log.warning("serial link %s waits for the database: %s", port, e)
                stop.wait(reopen)
    finally:
        if ser is not None:
            ser.close()
        if link is not None:
            link.close()
    return session
