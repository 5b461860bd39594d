"""Consistent Overhead Byte Stuffing: frames with no 0x00 inside, so 0x00 can delimit them.

Overhead is at most one byte per 254 plus one, and a receiver that lost sync recovers at the next
0x00.  `encode_into` and `decode_into` work on preallocated buffers for the device path.
"""


class CobsError(ValueError):
    pass


def max_encoded_len(n):
    return n + n // 254 + 1


def encode_into(src, dst):
    """Encode `src` into `dst` (at least max_encoded_len(len(src)) bytes); returns the length."""
    code_pos = 0
    out = 1
    code = 1
    for b in src:
        if b == 0:
            dst[code_pos] = code
            code_pos = out
            out += 1
            code = 1
        else:
            dst[out] = b
            out += 1
            code += 1
            if code == 0xFF:
                dst[code_pos] = code
                code_pos = out
                out += 1
                code = 1
    dst[code_pos] = code
    return out


def encode(src):
    dst = bytearray(max_encoded_len(len(src)))
    return bytes(memoryview(dst)[: encode_into(src, dst)])


def decode_into(src, dst):
    """Decode one frame body (no delimiter) from `src` into `dst`; returns the length."""
    n = len(src)
    i = 0
    out = 0
    while i < n:
        code = src[i]
        if code == 0:
            raise CobsError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise CobsError("COBS block runs past the end of the frame")
        i += 1
        while i < end:
            b = src[i]
            if b == 0:
                raise CobsError("zero byte inside a COBS frame")
            if out >= len(dst):
                raise CobsError("decoded frame larger than the buffer")
            dst[out] = b
            out += 1
            i += 1
        if code != 0xFF and i < n:
            if out >= len(dst):
                raise CobsError("decoded frame larger than the buffer")
            dst[out] = 0
            out += 1
    return out


def decode(src):
    dst = bytearray(len(src))
    return bytes(memoryview(dst)[: decode_into(src, dst)])
