"""PN532 host-controller frames and the few commands an EMV reader needs.

Facts are from NXP's PN532 user manual (UM0701-02, firmware V1.6):
- §6.2.1.1 normal information frame: PREAMBLE 00, START CODE 00 FF, LEN, LCS (LEN + LCS = 0 mod 256),
  TFI (D4 host -> PN532, D5 PN532 -> host), PD0..PDn, DCS (TFI + PD + DCS = 0 mod 256), POSTAMBLE 00.
  LEN counts TFI and the PD bytes.
- §6.2.1.2 extended information frame: 00 00 FF FF FF LENM LENL LCS TFI PD... DCS 00 with
  LENM + LENL + LCS = 0 mod 256; up to 265 information bytes (TFI + PD) travel in one frame.
- §6.2.1.3/§6.2.1.4 ACK 00 00 FF 00 FF 00 and NACK 00 00 FF FF 00 00 (the host asks for a resend).
- §6.2.1.5 application-level error frame: 00 00 FF 01 FF 7F 81 00 (a syntax error in the command).
- §7.1 error codes in the status byte of In* responses (low 6 bits), bit 6 = MI (more information:
  the target's answer continues in the next InDataExchange), bit 7 = NAD present.
- §7.2.2 GetFirmwareVersion 02 -> 03 IC Ver Rev Support; §7.2.10 SAMConfiguration 14 Mode Timeout IRQ
  -> 15; §7.3.5 InListPassiveTarget 4A MaxTg BrTy -> 4B NbTg then per 106 kbps type A target
  Tg SENS_RES(2) SEL_RES(1) NFCIDLength NFCID1 [ATS when SEL_RES says ISO/IEC 14443-4];
  §7.3.8 InDataExchange 40 Tg DataOut -> 41 Status DataIn; §7.3.11 InRelease 52 Tg -> 53 Status.

The frame reader is a streaming parser with one bounded buffer: noise before a start code, a frame
with a wrong checksum or an impossible length are dropped (counted in `errors`) and the reader picks
up at the next start code, re-scanning the bytes of the rejected frame.  Everything malformed raises
Pn532Error, never anything else.
"""

TFI_HOST = 0xD4
TFI_PN532 = 0xD5
TFI_ERROR = 0x7F

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
WAKEUP = b"\x55\x55" + bytes(14)  # HSU wake-up: 55 55 then zeros so the chip leaves power-down

MAX_INFO = 265  # TFI + PD bytes in one frame (§6.2.1.2)
_MAX_NORMAL = 254  # LEN 0xFF is the extended-frame marker, so a normal frame carries <= 254
_MAX_FRAME = MAX_INFO + 10

# Events of the frame reader.
EV_ACK = 1
EV_NACK = 2
EV_ERROR = 3  # application-level error frame
EV_FRAME = 4  # payload = TFI + PD bytes

# Command codes (§7).
CMD_DIAGNOSE = 0x00
CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_DATA_EXCHANGE = 0x40
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
CMD_IN_RELEASE = 0x52

BRTY_106A = 0x00

STATUS_MI = 0x40
STATUS_NAD = 0x80
STATUS_ERROR_MASK = 0x3F

# §7.1 error codes (the status byte of In* responses, low 6 bits).
ERR_TIMEOUT = 0x01
ERR_RELEASED = 0x29
ERR_DISAPPEARED = 0x2B
# One string, not a dict of 26 strings: on a board every object costs heap.
_STATUS_TEXT = (
    "01target did not answer|02CRC error|03parity error|04bit count error in anticollision|"
    "05framing error|06bit collision|07buffer too small|09RF buffer overflow|"
    "0ARF field not switched on in time|0BRF protocol error|0Doverheating|"
    "0Einternal buffer overflow|10invalid parameter|12command not supported by target|"
    "13data format wrong|14authentication error|23UID check byte wrong|25invalid device state|"
    "26operation not allowed|27command not acceptable now|29target released|"
    "2Acard ID does not match|2Bcard disappeared|2CNFCID3 mismatch|2Dover-current|"
    "2ENAD missing|"
)


class Pn532Error(ValueError):
    pass


def status_text(status):
    code = "%02X" % (status & STATUS_ERROR_MASK)
    i = 0
    while i < len(_STATUS_TEXT):
        j = _STATUS_TEXT.find("|", i)
        if _STATUS_TEXT[i : i + 2] == code:
            return _STATUS_TEXT[i + 2 : j]
        i = j + 1
    return "error 0x" + code


# --- frames --------------------------------------------------------------------------------------


def encode(tfi, data=b""):
    """One information frame carrying TFI + data: normal up to 254 bytes, extended above."""
    n = len(data) + 1
    if n > MAX_INFO:
        raise Pn532Error("frame of %d information bytes exceeds %d" % (n, MAX_INFO))
    dsum = tfi
    for b in data:
        dsum += b
    if n <= _MAX_NORMAL:
        head = bytes((0x00, 0x00, 0xFF, n, (-n) & 0xFF))
    else:
        hi, lo = n >> 8, n & 0xFF
        head = bytes((0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF))
    return head + bytes((tfi,)) + bytes(data) + bytes(((-dsum) & 0xFF, 0x00))


def command(code, params=b""):
    """A host -> PN532 command frame (TFI D4)."""
    return encode(TFI_HOST, bytes((code,)) + bytes(params))


def response(code, data=b""):
    """A PN532 -> host response frame to command `code` (TFI D5, code + 1): what the chip sends."""
    return encode(TFI_PN532, bytes((code + 1,)) + bytes(data))


def response_data(payload, code):
    """The data of a response payload (TFI + PD) to command `code`; Pn532Error if it is not one."""
    if len(payload) < 2 or payload[0] != TFI_PN532:
        raise Pn532Error("not a PN532 response frame")
    if payload[1] != (code + 1) & 0xFF:
        raise Pn532Error("response 0x%02X to command 0x%02X" % (payload[1], code))
    return bytes(payload[2:])


class FrameReader:
    """Bytes in, (event, payload) out; one preallocated buffer of the largest frame's size."""

    def __init__(self, max_info=MAX_INFO):
        self.max_info = max_info
        self._buf = bytearray(max_info + 10)
        self._mv = memoryview(self._buf)
        self._n = 0
        self.errors = 0

    def reset(self):
        self._n = 0

    def feed(self, data):
        """Append received bytes; returns a list of (EV_*, payload bytes or None), maybe empty."""
        out = []
        mv = memoryview(data)
        i = 0
        while i < len(mv):
            room = len(self._buf) - self._n
            k = min(room, len(mv) - i)
            self._buf[self._n : self._n + k] = mv[i : i + k]
            self._n += k
            i += k
            self._parse(out)
        return out

    def _drop(self, k):
        n = self._n
        if k >= n:
            self._n = 0
            return
        self._buf[0 : n - k] = self._mv[k:n]
        self._n = n - k

    def _parse(self, out):
        buf = self._buf
        while True:
            n = self._n
            # Find the start code 00 FF.
            s = 0
            while s + 1 < n and not (buf[s] == 0x00 and buf[s + 1] == 0xFF):
                s += 1
            if s + 1 >= n:
                # Keep a trailing 00 that may begin a start code; everything before is noise.
                keep = 1 if n and buf[n - 1] == 0x00 else 0
                self._drop(n - keep)
                return
            if s:
                self._drop(s)
                n = self._n
            # buf[0:2] == 00 FF
            if n < 4:
                return
            a, b = buf[2], buf[3]
            if a == 0x00 and b == 0xFF:
                out.append((EV_ACK, None))
                self._drop(4)
                continue
            if a == 0xFF and b == 0x00:
                out.append((EV_NACK, None))
                self._drop(4)
                continue
            if a == 0xFF and b == 0xFF:
                if n < 7:
                    return
                length = (buf[4] << 8) | buf[5]
                if (buf[4] + buf[5] + buf[6]) & 0xFF or length == 0 or length > self.max_info:
                    self._reject()
                    continue
                start = 7
            else:
                length = a
                if (a + b) & 0xFF or length == 0 or length > self.max_info:
                    self._reject()
                    continue
                start = 4
            end = start + length  # index of DCS
            if n < end + 1:
                return
            total = 0
            for j in range(start, end + 1):
                total += buf[j]
            if total & 0xFF:
                self._reject()
                continue
            payload = bytes(self._mv[start:end])
            self._drop(end + 1)
            if payload == b"\x7f":
                out.append((EV_ERROR, None))
            else:
                out.append((EV_FRAME, payload))

    def _reject(self):
        # Not a frame after all: count it and search again from the byte after this start code.
        self.errors += 1
        self._drop(1)


# --- commands and their responses ------------------------------------------------------------------


def get_firmware_version():
    return command(CMD_GET_FIRMWARE_VERSION)


def parse_firmware_version(payload):
    """(ic, version, revision, support) from a GetFirmwareVersion response payload."""
    d = response_data(payload, CMD_GET_FIRMWARE_VERSION)
    if len(d) != 4:
        raise Pn532Error("firmware version of %d bytes, not 4" % len(d))
    return d[0], d[1], d[2], d[3]


def sam_configuration(mode=1, timeout=0x14, irq=1):
    """Mode 1 = normal (no SAM); timeout in 50 ms units (only used in virtual-card mode)."""
    return command(CMD_SAM_CONFIGURATION, bytes((mode, timeout, irq)))


def parse_sam_configuration(payload):
    if response_data(payload, CMD_SAM_CONFIGURATION):
        raise Pn532Error("SAMConfiguration answered with data")


def in_list_passive_target(max_tg=1, brty=BRTY_106A):
    return command(CMD_IN_LIST_PASSIVE_TARGET, bytes((max_tg, brty)))


def parse_in_list_passive_target(payload):
    """106 kbps type A targets: a list of (tg, sens_res, sel_res, nfcid, ats or None)."""
    d = response_data(payload, CMD_IN_LIST_PASSIVE_TARGET)
    if not d:
        raise Pn532Error("InListPassiveTarget response without NbTg")
    count = d[0]
    if count > 2:
        raise Pn532Error("%d targets; the PN532 lists at most 2" % count)
    out = []
    i = 1
    for _ in range(count):
        if i + 5 > len(d):
            raise Pn532Error("target entry truncated at byte %d" % i)
        tg = d[i]
        sens_res = bytes(d[i + 1 : i + 3])
        sel_res = d[i + 3]
        idlen = d[i + 4]
        i += 5
        if idlen not in (4, 7, 10) or i + idlen > len(d):
            raise Pn532Error("NFCID of length %d at byte %d" % (idlen, i))
        nfcid = bytes(d[i : i + idlen])
        i += idlen
        ats = None
        if sel_res & 0x20:  # ISO/IEC 14443-4 compliant: the chip sent RATS, the ATS follows
            if i >= len(d):
                raise Pn532Error("ATS missing for an ISO 14443-4 target")
            tl = d[i]
            if tl < 1 or i + tl > len(d):
                raise Pn532Error("ATS length %d at byte %d" % (tl, i))
            ats = bytes(d[i : i + tl])
            i += tl
        out.append((tg, sens_res, sel_res, nfcid, ats))
    if i != len(d):
        raise Pn532Error("%d stray bytes after the target list" % (len(d) - i))
    return out


def in_data_exchange(tg, data, more=False):
    """Send `data` to target `tg`; `more` sets MI in Tg (the host chains a long command)."""
    if len(data) > MAX_INFO - 3:
        raise Pn532Error("InDataExchange data of %d bytes exceeds %d" % (len(data), MAX_INFO - 3))
    return command(CMD_IN_DATA_EXCHANGE, bytes(((tg & 0x3F) | (STATUS_MI if more else 0),)) + bytes(data))


def parse_in_data_exchange(payload):
    """(status, data): status & 0x3F is an error code (0 = ok), status & 0x40 the MI chaining flag."""
    d = response_data(payload, CMD_IN_DATA_EXCHANGE)
    if not d:
        raise Pn532Error("InDataExchange response without status")
    return d[0], bytes(d[1:])


def in_release(tg=0):
    """Release target `tg` (0 = all)."""
    return command(CMD_IN_RELEASE, bytes((tg,)))


def parse_status(payload, code):
    """The status byte of a single-status response (InRelease, ...)."""
    d = response_data(payload, code)
    if len(d) != 1:
        raise Pn532Error("status response of %d bytes" % len(d))
    return d[0]
