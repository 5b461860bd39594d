"""Consistent Overhead Byte Stuffing: frames with no 0x00 inside, so 0x00 can delimit them.

Overhead is at most one byte per 254 plus one, and a receiver that lost sync recovers at the next
0x00.  `encode_into` and `decode_into` work on preallocated buffers for the device path.
"""


class CobsError(ValueError):
    pass


def max_encoded_len(n):
    return n + n // 254 + 1


def encode_into(src, dst, n=None):
    """Encode the first `n` bytes of `src` (all of it by default) into the bytearray or memoryview `dst`
    (at least max_encoded_len(n) bytes); returns the length.  Works a block at a time (find + one copy
    through a memoryview), not byte by byte, and allocates no copy of the data: this runs per frame."""
    if not hasattr(src, "find"):  # a memoryview: one copy, so find() is available
        src = bytes(src)
    if n is None:
        n = len(src)
    mv = memoryview(src)
    i = 0
    out = 0
    while True:
        limit = min(i + 254, n)
        j = src.find(b"\x00", i, limit)
        zero = j >= 0
        if not zero:
            j = limit
        k = j - i
        dst[out] = k + 1
        dst[out + 1:out + 1 + k] = mv[i:j]
        out += k + 1
        if zero:
            i = j + 1
        else:
            i = j
            if k < 254:
                return out
            # a full block: more data follows, or the empty block that ends the frame


def encode(src):
    dst = bytearray(max_encoded_len(len(src)))
    return bytes(memoryview(dst)[: encode_into(src, dst)])


def decode_into(src, dst):
    """Decode one frame body (no delimiter) from `src` into the bytearray `dst`; returns the length."""
    n = len(src)
    cap = len(dst)
    i = 0
    out = 0
    while i < n:
        code = src[i]
        if code == 0:
            raise CobsError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise CobsError("COBS block runs past the end of the frame")
        k = code - 1
        if out + k > cap:
            raise CobsError("decoded frame larger than the buffer")
        if k:
            dst[out:out + k] = src[i + 1:end]
            if dst.find(b"\x00", out, out + k) >= 0:
                raise CobsError("zero byte inside a COBS frame")
            out += k
        i = end
        if code != 0xFF and i < n:
            if out >= cap:
                raise CobsError("decoded frame larger than the buffer")
            dst[out] = 0
            out += 1
    return out


def decode(src):
    dst = bytearray(len(src))
    return bytes(memoryview(dst)[: decode_into(src, dst)])
