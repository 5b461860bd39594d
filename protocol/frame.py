"""Link framing for any byte stream: COBS(payload + CRC-32 little-endian) followed by 0x00.

A receiver that joins mid-stream or loses bytes to noise drops at most the frame in progress and
resynchronises at the next 0x00 delimiter.  Frames are bounded (MAX_PAYLOAD) so a device can keep its
receive buffer preallocated; anything longer is discarded and counted, never buffered.
"""

import struct

from protocol import cobs
from protocol.crc import crc32

MAX_PAYLOAD = 480  # + 4 bytes CRC, COBS and the delimiter stays under 512 bytes on the wire
DELIMITER = 0


def encode(payload):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds the %d-byte frame limit" % (len(payload), MAX_PAYLOAD))
    body = bytearray(payload)
    body += struct.pack("<I", crc32(payload))
    return cobs.encode(body) + b"\x00"


def wire_into(payload, out, scratch):
    """0x00, then encode(payload), written into the bytearray `out` (at least 2 + max_encoded_len(len(payload)
    + 4) bytes); returns the length.  `scratch` (at least len(payload) + 4 bytes) holds the payload and its
    CRC on the way: the device's send path reuses both buffers for every frame."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds the %d-byte frame limit" % (n, MAX_PAYLOAD))
    scratch[0:n] = payload
    struct.pack_into("<I", scratch, n, crc32(payload))
    out[0] = 0
    m = cobs.encode_into(scratch, memoryview(out)[1:], n + 4)
    out[1 + m] = 0
    return m + 2


class FrameReader:
    """Turns received bytes into checked payloads.  `errors` counts frames dropped as corrupt."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self._raw = bytearray(cobs.max_encoded_len(max_payload + 4))
        self._body = bytearray(max_payload + 4)
        self._n = 0
        self._overflow = False
        self.errors = 0

    def feed(self, data):
        """Consume `data`; returns the list of good payloads it completed (usually none or one).

        Bytes are copied into the frame buffer a run at a time and the delimiter is found with
        bytearray.find, so the cost per byte is C, not Python, on both runtimes."""
        frames = []
        raw = self._raw
        cap = len(raw)
        pos = 0
        total = len(data)
        while pos < total:
            if self._n == cap and not self._overflow:  # a full buffer: only a delimiter may follow
                if data[pos] != DELIMITER:
                    self._overflow = True
                    continue
                self._complete(frames)
                pos += 1
                continue
            start = 0 if self._overflow else self._n  # while overflowing, the buffer is scratch space
            take = min(total - pos, cap - start)
            raw[start:start + take] = data[pos:pos + take]
            end = raw.find(b"\x00", start, start + take)
            if end < 0:
                pos += take
                if not self._overflow:
                    self._n = start + take
                continue
            pos += end - start + 1
            if not self._overflow:
                self._n = end
            self._complete(frames)
        return frames

    def _complete(self, frames):
        """A delimiter arrived: the bytes before it are one frame (or a dropped, overlong one)."""
        if self._overflow:
            self.errors += 1
        elif self._n:
            payload = self._check(memoryview(self._raw)[: self._n])
            if payload is None:
                self.errors += 1
            else:
                frames.append(payload)
        self._n = 0
        self._overflow = False

    def _check(self, encoded):
        try:
            n = cobs.decode_into(encoded, self._body)
        except cobs.CobsError:
            return None
        if n < 4:
            return None
        body = memoryview(self._body)
        (crc,) = struct.unpack("<I", body[n - 4 : n])
        if crc32(body[: n - 4]) != crc:
            return None
        return bytes(body[: n - 4])
