"""Checksums used on the wire: CRC-32 (frames, records) and two CRC-16s (EMV MPM, scanner frames).

Runs on CPython and MicroPython.  CRC-32 uses binascii.crc32 where the port has it (C speed) and a
nibble table otherwise; the CRC-16s are small enough to compute bit by bit.
"""

try:
    from binascii import crc32 as _crc32
except ImportError:  # a port built without MICROPY_PY_BINASCII_CRC32
    _crc32 = None

_NIBBLE = (
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
)


def crc32(data, crc=0):
    """CRC-32/ISO-HDLC (the zlib CRC): crc32(b"123456789") == 0xCBF43926."""
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    crc = ~crc & 0xFFFFFFFF
    for b in data:
        crc ^= b
        crc = (crc >> 4) ^ _NIBBLE[crc & 15]
        crc = (crc >> 4) ^ _NIBBLE[crc & 15]
    return ~crc & 0xFFFFFFFF


def crc16_ccitt_false(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): the EMVCo merchant-presented QR checksum."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def crc16_xmodem(data):
    """CRC-16/XMODEM (poly 0x1021, init 0): the checksum of GM65-class scanner command frames."""
    return crc16_ccitt_false(data, 0)
