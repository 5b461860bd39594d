"""SM3 hash (GB/T 32905-2016): the digest SM2 signatures (GM/T 0003) are made over.

Plain 32-bit word arithmetic with masking, so MicroPython keeps every word a small int on 64-bit ports.
The 64 round constants T_j <<< j are computed once at import; one list of 68 expanded words is reused
for every block.
"""

_M = 0xFFFFFFFF
_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600, 0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & _M


_T = [_rotl(0x79CC4519 if j < 16 else 0x7A879D8A, j % 32) for j in range(64)]
_W = [0] * 68


def _compress(v, block):
    """Update the 8-word state list `v` in place with one 64-byte `block`."""
    w = _W
    m = _M
    for i in range(16):
        w[i] = int.from_bytes(block[4 * i:4 * i + 4], "big")
    for j in range(16, 68):
        x = w[j - 16] ^ w[j - 9] ^ (((w[j - 3] << 15) | (w[j - 3] >> 17)) & m)
        x = x ^ (((x << 15) | (x >> 17)) & m) ^ (((x << 23) | (x >> 9)) & m)
        w[j] = x ^ (((w[j - 13] << 7) | (w[j - 13] >> 25)) & m) ^ w[j - 6]
    a, b, c, d, e, f, g, h = v
    t = _T
    for j in range(64):
        a12 = ((a << 12) | (a >> 20)) & m
        ss1 = (a12 + e + t[j]) & m
        ss1 = ((ss1 << 7) | (ss1 >> 25)) & m
        if j < 16:
            tt1 = ((a ^ b ^ c) + d + (ss1 ^ a12) + (w[j] ^ w[j + 4])) & m
            tt2 = ((e ^ f ^ g) + h + ss1 + w[j]) & m
        else:
            tt1 = (((a & b) | (a & c) | (b & c)) + d + (ss1 ^ a12) + (w[j] ^ w[j + 4])) & m
            tt2 = (((e & f) | ((e ^ m) & g)) + h + ss1 + w[j]) & m
        d = c
        c = ((b << 9) | (b >> 23)) & m
        b = a
        a = tt1
        h = g
        g = ((f << 19) | (f >> 13)) & m
        f = e
        e = tt2 ^ (((tt2 << 9) | (tt2 >> 23)) & m) ^ (((tt2 << 17) | (tt2 >> 15)) & m)
    v[0] ^= a
    v[1] ^= b
    v[2] ^= c
    v[3] ^= d
    v[4] ^= e
    v[5] ^= f
    v[6] ^= g
    v[7] ^= h


def digest(data):
    """The 32-byte SM3 digest of the bytes-like `data`."""
    data = bytes(data)
    v = list(_IV)
    full = len(data) & ~63
    for i in range(0, full, 64):
        _compress(v, data[i:i + 64])
    tail = data[full:] + b"\x80"
    tail += bytes((56 - len(tail)) % 64) + (len(data) * 8).to_bytes(8, "big")
    for i in range(0, len(tail), 64):
        _compress(v, tail[i:i + 64])
    out = bytearray(32)
    for i in range(8):
        out[4 * i:4 * i + 4] = v[i].to_bytes(4, "big")
    return bytes(out)
