"""SM2 (GM/T 0003, GB/T 32918) and ECDSA P-256 signature verification: public keys only.

One short-Weierstrass implementation serves both curves, since both have a = -3: Jacobian coordinates
(X, Y, Z) stand for the affine point (X/Z^2, Y/Z^3); the final x-coordinate test compares X with
r' * Z^2 instead of dividing, so a verify inverts at most twice: once for the odd multiples of a key
given as bytes, once for ECDSA's s^-1 mod n.

A verify needs u1*G + u2*Q.  The generator has a comb table (Lim-Lee, TEETH points in columns of DEPTH
bits), a constant module per curve (ecc_g_sm2.py, ecc_g_p256.py, written by host_sim/tools/ecc_tables.py
with build_table()) imported on first use: frozen or in ROMFS it stays in flash, and no terminal spends
the ~20 KB a build needs for a moment.  A key known in advance (a ride-code root or issuer key) can get
the same table through prepare_key(): then both multiples run down one shared chain of DEPTH doublings
with two mixed additions per column.  Any other key is multiplied with a width-5 NAF over a table of its
8 odd multiples, 256 doublings, and the generator's comb additions ride on the last DEPTH of them.  A
comb table is (2^TEETH - 1) affine points, each 64 bytes x || y of its own (about 5 KB of heap per
prepared key at TEETH = 6), read back into ints as the additions need them.  Small blocks, allocated
before the build: a long-running terminal's heap has free space in pieces, rarely a free 4 KB run.

Field arithmetic is plain Python ints (MicroPython's long ints), so this module runs unchanged on
CPython.  Modular inverses use Fermat (pow(x, m - 2, m)): MicroPython's pow() does not take -1.
Malformed keys and signatures (wrong types or lengths, points off the curve, r or s outside [1, n-1],
bad DER) make the verify functions return False; they never raise.
"""

import hashlib

from protocol import sm3

TEETH = 6  # comb width: 2^TEETH - 1 table points per fixed point
WINDOW = 5  # NAF width for keys without a table: 2^(WINDOW-2) odd multiples

DEFAULT_UID = b"1234567812345678"  # GM/T 0009 default signer id


class Curve:
    """y^2 = x^3 - 3x + b over GF(p), generator (gx, gy) of prime order n (cofactor 1)."""

    def __init__(self, name, p, b, gx, gy, n, table):
        self.name = name
        self._load_table = table  # () -> the generator's comb table, a constant module (ecc_g_*.py)
        self.p = p
        self.b = b
        self.gx = gx
        self.gy = gy
        self.n = n
        self.size = 32  # bytes of p and of n: both curves are 256-bit
        self._g_table = None

    def on_curve(self, x, y):
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + self.b)) % p == 0

    def g_table(self):
        """The generator's comb table: a constant (precomputed by host_sim/tools/ecc_tables.py), imported
        on first use, so no terminal ever builds it."""
        if self._g_table is None:
            self._g_table = self._load_table()
        return self._g_table


def _sm2_table():
    from protocol import ecc_g_sm2

    return ecc_g_sm2.TABLE


def _p256_table():
    from protocol import ecc_g_p256

    return ecc_g_p256.TABLE


SM2 = Curve(
    "sm2p256v1",
    0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    _sm2_table,
)

P256 = Curve(
    "secp256r1",
    0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    _p256_table,
)


# ---------------------------------------------------------------------------------------------------
# Jacobian point arithmetic; Z == 0 is the point at infinity.


def _double(p, x1, y1, z1):
    """2(X1, Y1, Z1) for a = -3 (M = 3(X - Z^2)(X + Z^2)): 9 multiplications, 7 reductions; in
    Python a multiplication costs what a squaring does, so the fewest operations win."""
    if z1 == 0 or y1 == 0:
        return 0, 1, 0
    zz = z1 * z1 % p
    yy = y1 * y1 % p
    m = 3 * (x1 - zz) * (x1 + zz) % p
    s = 4 * x1 * yy % p
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y1 * z1 % p


def _add_affine(p, x1, y1, z1, x2, y2):
    """(X1, Y1, Z1) + affine (x2, y2): 11 multiplications."""
    if z1 == 0:
        return x2, y2, 1
    zz = z1 * z1 % p
    return _sum(p, x1, y1, z1, x1, y1, (x2 * zz - x1) % p, (y2 * zz % p * z1 - y1) % p, z1)


def _add(p, x1, y1, z1, x2, y2, z2):
    """(X1, Y1, Z1) + (X2, Y2, Z2), both Jacobian (table building only)."""
    if z1 == 0:
        return x2, y2, z2
    if z2 == 0:
        return x1, y1, z1
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 % p * z2z2 % p
    s2 = y2 * z1 % p * z1z1 % p
    return _sum(p, x1, y1, z1, u1, s1, (u2 - u1) % p, (s2 - s1) % p, z1 * z2 % p)


def _sum(p, x1, y1, z1, u1, s1, h, r, z):
    """The end of both additions, from h = U2 - U1 and r = S2 - S1: Z3 = z * h; equal points double,
    opposite ones give infinity."""
    if h == 0:
        if r == 0:
            return _double(p, x1, y1, z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    return x3, y3, z * h % p


def _normalize(p, xs, ys, zs, packed=None):
    """Make the Jacobian points (xs[i], ys[i], zs[i]) affine with one inversion for all of them
    (Montgomery's trick): in place in xs and ys, or as 64 bytes x || y per point into `packed`.
    No point may be at infinity."""
    count = len(zs)
    prefix = [1] * count
    acc = 1
    for i in range(count):
        prefix[i] = acc
        acc = _compact(acc * zs[i] % p)
    inv = pow(acc, p - 2, p)
    for i in range(count - 1, -1, -1):
        zi = inv * prefix[i] % p
        inv = inv * zs[i] % p
        zi2 = zi * zi % p
        x = xs[i] * zi2 % p
        y = ys[i] * zi2 % p * zi % p
        if packed is None:
            xs[i], ys[i] = _compact(x), _compact(y)
        else:
            e = packed[i]
            e[0:32] = x.to_bytes(32, "big")
            e[32:64] = y.to_bytes(32, "big")
            xs[i] = ys[i] = zs[i] = 0
        prefix[i] = 0


def _compact(v):
    """`v` in a fresh int of its own size: MicroPython keeps a product's digit buffer otherwise."""
    return int.from_bytes(v.to_bytes(32, "big"), "big")


# ---------------------------------------------------------------------------------------------------
# Comb tables and scalar multiplication


def _depth(curve):
    return (256 + TEETH - 1) // TEETH


def build_table(curve, x, y):
    """64 bytes (affine x || y) per entry: entry j - 1 = sum of 2^(i*DEPTH) * (x, y) over the bits i
    of j, for j in 1..2^TEETH-1.  The entries are allocated first, so the ints of the build leave no
    holes among them; built from TEETH affine bases, one mixed addition per entry, one inversion."""
    p = curve.p
    depth = _depth(curve)
    size = (1 << TEETH) - 1
    packed = [bytearray(64) for _ in range(size)]
    bx, by, bz = [x], [y], [1]
    for _ in range(TEETH - 1):
        px, py, pz = bx[-1], by[-1], bz[-1]
        for _ in range(depth):
            px, py, pz = _double(p, px, py, pz)
        bx.append(_compact(px))
        by.append(_compact(py))
        bz.append(_compact(pz))
    _normalize(p, bx, by, bz)
    xs, ys, zs = [0] * size, [0] * size, [1] * size
    for j in range(1, size + 1):
        top = 0
        while j >> (top + 1):
            top += 1
        rest = j ^ (1 << top)
        if rest:
            px, py, pz = _add_affine(p, xs[rest - 1], ys[rest - 1], zs[rest - 1], bx[top], by[top])
            xs[j - 1], ys[j - 1], zs[j - 1] = _compact(px), _compact(py), _compact(pz)
        else:
            xs[j - 1], ys[j - 1] = bx[top], by[top]
    _normalize(p, xs, ys, zs, packed)
    return packed


def _columns(k, depth):
    """The comb index of every column of scalar `k`, most significant column first."""
    raw = k.to_bytes(32, "big")
    out = bytearray(depth)
    for col in range(depth):
        idx = 0
        for i in range(TEETH):
            pos = i * depth + col
            if pos < 256 and raw[31 - (pos >> 3)] >> (pos & 7) & 1:
                idx |= 1 << i
        out[depth - 1 - col] = idx
    return out


def _comb2(curve, k1, table1, k2, table2):
    """k1*T1 + k2*T2 as Jacobian, both comb tables, down one chain of DEPTH doublings."""
    p = curve.p
    depth = _depth(curve)
    c1 = _columns(k1, depth)
    c2 = _columns(k2, depth)
    x, y, z = 0, 1, 0
    for col in range(depth):
        x, y, z = _double(p, x, y, z)
        i = c1[col]
        if i:
            e = table1[i - 1]
            x, y, z = _add_affine(p, x, y, z, int.from_bytes(e[0:32], "big"), int.from_bytes(e[32:64], "big"))
        i = c2[col]
        if i:
            e = table2[i - 1]
            x, y, z = _add_affine(p, x, y, z, int.from_bytes(e[0:32], "big"), int.from_bytes(e[32:64], "big"))
    return x, y, z


def _naf(k):
    """Width-WINDOW NAF digits of `k` (odd digits in +-(2^(WINDOW-1) - 1), as bytes mod 256), least
    significant first, in one preallocated bytearray; and how many there are."""
    full = 1 << WINDOW
    half = full >> 1
    out = bytearray(258)
    count = 0
    while k:
        if k & 1:
            d = k & (full - 1)
            if d >= half:
                d -= full
            k -= d
            out[count] = d & 0xFF
        count += 1
        k >>= 1
    return out, count


def _odd_multiples(curve, x, y):
    """(xs, ys): affine P, 3P, 5P, ... (2^(WINDOW-2) points), or None if one is at infinity."""
    p = curve.p
    dx, dy, dz = _double(p, x, y, 1)
    count = 1 << (WINDOW - 2)
    xs, ys, zs = [x] * count, [y] * count, [1] * count
    for i in range(1, count):
        xs[i], ys[i], zs[i] = _add(p, xs[i - 1], ys[i - 1], zs[i - 1], dx, dy, dz)
        if zs[i] == 0:
            return None
    _normalize(p, xs, ys, zs)
    return xs, ys


def _comb_naf(curve, k1, table1, k2, x, y):
    """k1*T1 (comb table) + k2*(x, y) (width-WINDOW NAF) as Jacobian, down one chain of doublings:
    the comb's column c is added where the chain has c doublings left."""
    p = curve.p
    odd = _odd_multiples(curve, x, y)
    if odd is None:
        return 0, 1, 0
    xs, ys = odd
    digits, count = _naf(k2)
    depth = _depth(curve)
    columns = _columns(k1, depth)
    rx, ry, rz = 0, 1, 0
    for i in range(max(count, depth) - 1, -1, -1):
        rx, ry, rz = _double(p, rx, ry, rz)
        d = digits[i]
        if d > 127:
            d = (256 - d) >> 1
            rx, ry, rz = _add_affine(p, rx, ry, rz, xs[d], p - ys[d])
        elif d:
            d >>= 1
            rx, ry, rz = _add_affine(p, rx, ry, rz, xs[d], ys[d])
        if i < depth:
            c = columns[depth - 1 - i]
            if c:
                e = table1[c - 1]
                rx, ry, rz = _add_affine(p, rx, ry, rz, int.from_bytes(e[0:32], "big"),
                                         int.from_bytes(e[32:64], "big"))
    return rx, ry, rz


def _mul_add(curve, u1, u2, key):
    """u1*G + u2*Q as Jacobian, Q a _Key."""
    if key.table is not None:
        return _comb2(curve, u1, curve.g_table(), u2, key.table)
    return _comb_naf(curve, u1, curve.g_table(), u2, key.x, key.y)


def _x_matches(curve, x, z, want):
    """True when the affine x of Jacobian (x, _, z), reduced mod n, equals `want` (in [0, n))."""
    p = curve.p
    if z == 0:
        return False
    zz = z * z % p
    if x == want * zz % p:
        return True
    return want + curve.n < p and x == (want + curve.n) * zz % p


# ---------------------------------------------------------------------------------------------------
# Keys, signatures, verification


class _Key:
    def __init__(self, curve, x, y, table):
        self.curve = curve
        self.x = x
        self.y = y
        self.table = table
        self.z_cache = None  # SM2, prepared keys: (user id, Z) of the last id

    def z(self, uid):
        """SM2's Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) for the bytes `uid`."""
        cached = self.z_cache
        if cached is not None and cached[0] == uid:
            return cached[1]
        curve = self.curve
        size = curve.size
        data = (len(uid) * 8).to_bytes(2, "big") + uid
        for v in (curve.p - 3, curve.b, curve.gx, curve.gy, self.x, self.y):
            data += v.to_bytes(size, "big")
        z = sm3.digest(data)
        if self.table is not None:
            self.z_cache = (uid, z)
        return z


class FixedKey(_Key):
    """A public key known in advance, with its comb table (one 4 KB block of heap): verify with it
    as the public_key argument.  Build it once, at configuration time, with prepare_key()."""


def _bytes_like(value):
    return isinstance(value, (bytes, bytearray, memoryview))


def _parse_key(curve, public_key):
    """A _Key for 64 bytes X||Y or 65 bytes 04||X||Y on `curve`, a FixedKey of `curve`, else None."""
    if isinstance(public_key, _Key):
        return public_key if public_key.curve is curve else None
    if not _bytes_like(public_key):
        return None
    raw = bytes(public_key)
    size = curve.size
    if len(raw) == 2 * size + 1 and raw[0] == 4:
        raw = raw[1:]
    if len(raw) != 2 * size:
        return None
    x = int.from_bytes(raw[:size], "big")
    y = int.from_bytes(raw[size:], "big")
    if not curve.on_curve(x, y):
        return None
    return _Key(curve, x, y, None)


def public_key(curve, raw):
    """The key of 64 bytes X||Y or 65 bytes 04||X||Y on `curve`, checked on the curve but without a
    table (no heap beyond its two ints), or None: verifies with it run the width-5 NAF path."""
    return _parse_key(curve, raw)


def prepare_key(curve, public_key):
    """A FixedKey for `public_key` (64 or 65 bytes) on `curve` (SM2 or P256), or None if it is not a
    point on the curve.  Costs about as much as two verifies; keep the result."""
    key = _parse_key(curve, public_key)
    if key is None or isinstance(key, FixedKey):
        return key
    return prepared(key)


def prepared(key):
    """The FixedKey of a key from public_key() (its comb table built now)."""
    return FixedKey(key.curve, key.x, key.y, build_table(key.curve, key.x, key.y))


def _der_int(raw, i):
    """(value, next index) of the DER INTEGER at raw[i], or None when it is not minimal and positive."""
    if i + 2 > len(raw) or raw[i] != 0x02:
        return None
    length = raw[i + 1]
    start = i + 2
    end = start + length
    if length == 0 or length > 33 or end > len(raw):
        return None
    if raw[start] & 0x80:
        return None
    if length > 1 and raw[start] == 0 and not raw[start + 1] & 0x80:
        return None
    return int.from_bytes(raw[start:end], "big"), end


def _parse_signature(curve, signature):
    """(r, s) from 64 bytes r||s or a DER SEQUENCE of two INTEGERs, both in [1, n-1]; else None."""
    if not _bytes_like(signature):
        return None
    raw = bytes(signature)
    size = curve.size
    if len(raw) == 2 * size:
        r = int.from_bytes(raw[:size], "big")
        s = int.from_bytes(raw[size:], "big")
    else:
        if len(raw) < 8 or raw[0] != 0x30 or raw[1] != len(raw) - 2 or raw[1] > 0x7F:
            return None
        first = _der_int(raw, 2)
        if first is None:
            return None
        second = _der_int(raw, first[1])
        if second is None or second[1] != len(raw):
            return None
        r, s = first[0], second[0]
    n = curve.n
    if not (0 < r < n and 0 < s < n):
        return None
    return r, s


def sm2_z(public_key, uid=DEFAULT_UID, curve=SM2):
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) of a key (bytes or FixedKey), or None."""
    key = _parse_key(curve, public_key)
    if key is None or not _bytes_like(uid) or len(uid) >= 8192:
        return None
    return key.z(bytes(uid))


def verify_sm2(public_key, message, signature, uid=DEFAULT_UID):
    """True when `signature` (64 bytes r||s or DER) is an SM2 signature of `message` by
    `public_key` (64 bytes X||Y, 65 bytes 04||X||Y, or a FixedKey from prepare_key(SM2, ...)) for
    signer id `uid`.  False for every malformed input."""
    curve = SM2
    key = _parse_key(curve, public_key)
    rs = _parse_signature(curve, signature)
    if key is None or rs is None or not _bytes_like(message) or not _bytes_like(uid) or len(uid) >= 8192:
        return False
    r, s = rs
    n = curve.n
    e = int.from_bytes(sm3.digest(key.z(bytes(uid)) + bytes(message)), "big")
    t = (r + s) % n
    if t == 0:
        return False
    x, _, z = _mul_add(curve, s, t, key)
    return _x_matches(curve, x, z, (r - e) % n)


def verify_p256(public_key, message, signature):
    """True when `signature` (64 bytes r||s or DER) is an ECDSA P-256 / SHA-256 signature of
    `message` by `public_key` (64 bytes X||Y, 65 bytes 04||X||Y, or a FixedKey from
    prepare_key(P256, ...)).  False for every malformed input."""
    curve = P256
    key = _parse_key(curve, public_key)
    rs = _parse_signature(curve, signature)
    if key is None or rs is None or not _bytes_like(message):
        return False
    r, s = rs
    n = curve.n
    e = int.from_bytes(hashlib.sha256(bytes(message)).digest(), "big")
    w = pow(s, n - 2, n)
    x, _, z = _mul_add(curve, e * w % n, r * w % n, key)
    return _x_matches(curve, x, z, r)
