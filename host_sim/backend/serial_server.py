"""The collector on a serial port or pty: one terminal at line rate, committed per frame."""

from host_sim.backend.host_session import Session


def serve_serial(port, store, stop, capture=None, backoffice=None):
    """Blocking loop for a serial port or pty (pyserial URL or path); returns the Session at stop.
    `capture`, a bytearray, receives a copy of every byte the terminal sent (tests, diagnosis)."""
    import serial

    ser = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
    session = Session(store, backoffice=backoffice)
    try:
        while not stop.is_set():
            data = ser.read(512)
            if capture is not None:
                capture += data
            reply = session.receive(data)  # also when nothing came: retransmission timers
            if reply:
                ser.write(reply)
    finally:
        ser.close()
    return session
