"""Structure-aware mutations: byte-level ones for every target, plus TLV length and tag tweaks,
base64 re-encoding for the QR codes that carry TLV or a signed body, MPM length digits, and one
scripted card answer at a time for the EMV read."""

import base64
import binascii

from protocol import tlv

INTERESTING = (0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0x82, 0xFE, 0xFF)
MAX_LEN = 4096


def tlv_fields(data):
    """(tag offset, length offset, length byte count) of every object a lenient walk finds."""
    out = []

    def walk(i, end, depth):
        while i < end and len(out) < 64:
            start = i
            try:
                tag, constructed, i = tlv._read_tag(data, i, end)
                at = i
                length, i = tlv._read_length(data, i, end)
            except (tlv.TlvError, IndexError):
                return
            out.append((start, at, i - at))
            if constructed and depth < 4:
                walk(i, min(end, i + length), depth + 1)
            i += length

    walk(0, len(data), 0)
    return out


def tlv_tweak(rng, data):
    fields = tlv_fields(data)
    if not fields:
        return None
    tag_at, at, n = rng.choice(fields)
    out = bytearray(data)
    choice = rng.randrange(5)
    if choice == 0 and n == 1:  # length off by a little
        out[at] = (out[at] + rng.choice((-2, -1, 1, 2, 0x80))) & 0xFF
    elif choice == 1:  # a long length form for the same value
        length = out[at] if n == 1 and out[at] < 0x80 else None
        if length is None:
            return None
        longer = (bytes((0x81, length)), bytes((0x82, 0, length)), b"\x83\x00\x00" + bytes((length,)))
        out[at:at + 1] = rng.choice(longer)
    elif choice == 2:  # flip the constructed bit of the tag
        out[tag_at] ^= 0x20
    elif choice == 3:  # duplicate the object
        end = _object_end(data, at, n)
        out[tag_at:tag_at] = data[tag_at:end]
    else:  # drop the object
        end = _object_end(data, at, n)
        del out[tag_at:end]
    return bytes(out)


def _object_end(data, at, n):
    try:
        length, i = tlv._read_length(data, at, len(data))
    except (tlv.TlvError, IndexError):
        return at + n
    return min(len(data), i + length)


def byte_level(rng, data, corpus, words):
    out = bytearray(data)
    n = len(out)
    choice = rng.randrange(11)
    if choice == 0 and n:
        i = rng.randrange(n)
        out[i] ^= 1 << rng.randrange(8)
    elif choice == 1 and n:
        out[rng.randrange(n)] = rng.choice(INTERESTING)
    elif choice == 2 and n:
        out[rng.randrange(n)] = rng.randrange(256)
    elif choice == 3:
        out[rng.randrange(n + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        out = bytearray(out)
    elif choice == 4:
        i = rng.randrange(n + 1)
        out[i:i] = rng.choice(words)
    elif choice == 5 and n:
        i = rng.randrange(n)
        del out[i:i + rng.randrange(1, 9)]
    elif choice == 6 and n:
        del out[rng.randrange(n):]
    elif choice == 7 and n:
        i = rng.randrange(n)
        j = min(n, i + rng.randrange(1, 33))
        k = rng.randrange(n + 1)
        out[k:k] = out[i:j]
    elif choice == 8 and corpus:
        other = rng.choice(corpus)
        out = bytearray(out[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1):])
    elif choice == 9 and n:  # a length-like byte set to the bytes that follow it, give or take one
        i = rng.randrange(n)
        out[i] = max(0, min(255, n - i - 1 + rng.choice((-1, 0, 1))))
    elif choice == 10 and n >= 2:  # 16-bit counts and lengths, both byte orders
        i = rng.randrange(n - 1)
        v = rng.choice((0, 1, 0xFF, 0x100, 0x7FFF, 0xFFFF, n - i))
        out[i:i + 2] = v.to_bytes(2, rng.choice(("big", "little")), signed=False) if 0 <= v <= 0xFFFF else b"\x00\x00"
    return bytes(out)


def _b64_inner(rng, data, corpus, words, url):
    """Decode the base64 part, mutate the bytes inside (TLV-aware), encode it again."""
    text = bytes(data)
    prefix = b""
    if url:
        cut = text.find(b".")
        prefix, text = text[: cut + 1], text[cut + 1:]
        text = text.replace(b"-", b"+").replace(b"_", b"/")
        text += b"=" * (-len(text) % 4)
    try:
        raw = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        return None
    inner = (not url and tlv_tweak(rng, raw)) or byte_level(rng, raw, (), words)
    out = base64.b64encode(inner)
    if url:
        out = out.replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")
    return prefix + out


def _mpm_digits(rng, data):
    """Replace a two-digit run (an MPM ID or length) with other digits."""
    spots = [i for i in range(len(data) - 1) if 48 <= data[i] <= 57 and 48 <= data[i + 1] <= 57]
    if not spots:
        return None
    i = rng.choice(spots)
    return data[:i] + b"%02d" % rng.randrange(100) + data[i + 2:]


def _answers(data):
    out = []
    i = 0
    while i + 2 <= len(data):
        n = (data[i] << 8) | data[i + 1]
        out.append(bytes(data[i + 2:i + 2 + n]))
        i += 2 + n
    return out


def _emv(rng, data, corpus, words):
    """Mutate one scripted answer and keep the framing right; sometimes drop or repeat an answer."""
    answers = _answers(data)
    if not answers:
        return None
    k = rng.randrange(len(answers))
    choice = rng.randrange(6)
    if choice == 0:
        del answers[k]
    elif choice == 1:
        answers.insert(k, answers[k])
    else:
        a = answers[k]
        body, sw = a[:-2], a[-2:]
        body = tlv_tweak(rng, body) or byte_level(rng, body, (), words)
        if rng.randrange(8) == 0:
            sw = rng.choice((b"\x90\x00", b"\x61\x10", b"\x6c\x10", b"\x6a\x82", b"\x69\x85", b""))
        answers[k] = body + sw
    return b"".join(len(a).to_bytes(2, "big") + a for a in answers)


STRUCTURED = {
    "tlv": lambda rng, d, c, w: tlv_tweak(rng, d),
    "cpm": lambda rng, d, c, w: _b64_inner(rng, d, c, w, False),
    "ticket": lambda rng, d, c, w: _b64_inner(rng, d, c, w, True),
    "mpm": lambda rng, d, c, w: _mpm_digits(rng, d),
    "emv": _emv,
    "peer": _emv,
    "sealing": _emv,  # the same framing: one payload after another, each with a 2-byte length
    "decide": lambda rng, d, c, w: _b64_inner(rng, d, c, w, d.startswith(b"ZT1.")),
    "qr_tool": lambda rng, d, c, w: _mpm_digits(rng, d) if d.startswith(b"0002") else _b64_inner(
        rng, d, c, w, d.startswith(b"ZT1.")),
    "emv_fields": lambda rng, d, c, w: tlv_tweak(rng, d),
}


def mutate(rng, name, data, corpus, words):
    """One child of `data`: one to four stacked mutations, half of them structure-aware where known."""
    structured = STRUCTURED.get(name)
    out = data
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3, 4))):
        child = None
        if structured is not None and rng.randrange(2):
            child = structured(rng, out, corpus, words)
        if child is None:
            child = byte_level(rng, out, corpus, words)
        out = child
    return out[:MAX_LEN]
