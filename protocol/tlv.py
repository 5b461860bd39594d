"""BER-TLV as EMV uses it: multi-byte tags, 1-4 byte lengths, constructed and primitive objects.

A decoded object is a tuple (tag, value, children): `tag` an int (0x9F26), `value` the raw bytes,
`children` a list of objects for constructed tags and None for primitive ones.  Depth, input size and
object count are bounded so hostile input cannot exhaust a small heap; every malformation raises
TlvError saying where.  Formats that forbid a tag twice in one template (EMV CPM, Book 3 annex B: a
tag appears at most once per template) ask for `unique=True`.
"""


class TlvError(ValueError):
    pass


MAX_DEPTH = 6
MAX_SIZE = 4096  # bytes of input; a QR code holds at most ~2.9 KB
MAX_OBJECTS = 256  # objects in one decode, all levels together


def _read_tag(data, i, n):
    if i >= n:
        raise TlvError("missing tag at byte %d" % i)
    first = data[i]
    tag = first
    i += 1
    if first & 0x1F == 0x1F:
        while True:
            if i >= n:
                raise TlvError("tag truncated at byte %d" % i)
            b = data[i]
            tag = (tag << 8) | b
            i += 1
            if not b & 0x80:
                break
            if tag > 0xFFFF:  # three bytes read and the last says another follows
                raise TlvError("tag longer than 3 bytes at byte %d" % i)
    return tag, first & 0x20, i


def _read_length(data, i, n):
    if i >= n:
        raise TlvError("length missing at byte %d" % i)
    b = data[i]
    i += 1
    if b < 0x80:
        return b, i
    count = b & 0x7F
    if count == 0 or count > 3:
        raise TlvError("unsupported length form 0x%02X at byte %d" % (b, i - 1))
    if i + count > n:
        raise TlvError("length truncated at byte %d" % i)
    length = 0
    for _ in range(count):
        length = (length << 8) | data[i]
        i += 1
    return length, i


def decode(data, max_depth=MAX_DEPTH, unique=False, max_size=MAX_SIZE, repeatable=()):
    """All objects in `data` (bytes); raises TlvError on truncation, overrun, excessive depth or size,
    and with `unique` on a tag repeated inside one template (or at the top level), except the tags in
    `repeatable` (CPM: several application templates 61)."""
    if len(data) > max_size:
        raise TlvError("TLV input of %d bytes exceeds %d" % (len(data), max_size))
    count = [0]
    return _decode(data, 0, len(data), max_depth, repeatable if unique else None, count)


def _decode(data, start, end, depth, unique, count):
    if depth < 0:
        raise TlvError("TLV nesting deeper than allowed at byte %d" % start)
    out = []
    i = start
    while i < end:
        at = i
        tag, constructed, i = _read_tag(data, i, end)
        length, i = _read_length(data, i, end)
        if i + length > end:
            raise TlvError("value of tag %X at byte %d runs past its container (%d > %d bytes)"
                           % (tag, i, length, end - i))
        count[0] += 1
        if count[0] > MAX_OBJECTS:
            raise TlvError("more than %d TLV objects at byte %d" % (MAX_OBJECTS, at))
        if unique is not None and tag not in unique:
            for seen in out:
                if seen[0] == tag:
                    raise TlvError("tag %X repeated in one template at byte %d" % (tag, at))
        value = bytes(data[i : i + length])
        children = _decode(data, i, i + length, depth - 1, unique, count) if constructed else None
        out.append((tag, value, children))
        i += length
    return out


def find(objects, tag):
    """The value of the first object with `tag`, searched depth-first; None when absent."""
    for t, value, children in objects:
        if t == tag:
            return value
        if children:
            found = find(children, tag)
            if found is not None:
                return found
    return None


def encode_tag(tag):
    if tag > 0xFFFF:
        return bytes([tag >> 16, (tag >> 8) & 0xFF, tag & 0xFF])
    if tag > 0xFF:
        return bytes([tag >> 8, tag & 0xFF])
    return bytes([tag])


def encode(tag, value):
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    elif n < 0x10000:
        length = bytes([0x82, n >> 8, n & 0xFF])
    else:
        raise TlvError("value too long")
    return encode_tag(tag) + length + bytes(value)
