"""Opening card data sealed to the collector (SPEC.md "Sealed card data"), the host's side of protocol/seal.py:
the key records' parts put together and the sealed extension opened with the unwrapped epoch key.  Sans-IO
and pure Python like every protocol module (its tests run inside MicroPython too), but no terminal loads it.
"""

import struct

from protocol import crypto, seal

PART_HEAD_SIZE = 14
KEY_ID_SIZE = 4
SEALED_MIN = KEY_ID_SIZE + crypto.NONCE_SIZE + crypto.TAG_SIZE


class SealError(ValueError):
    pass


def parse_key_part(value):
    """(key id, part index, part count, fingerprint, chunk) of an EXT_SEAL_KEY value; SealError if malformed."""
    if len(value) != PART_HEAD_SIZE + seal.CHUNK:
        raise SealError("key part of %d bytes" % len(value))
    key_id, index, count, fp = struct.unpack(seal.PART_HEAD, bytes(value[:PART_HEAD_SIZE]))
    if count != seal.PARTS or index >= count:
        raise SealError("key part %d of %d" % (index, count))
    return key_id, index, count, fp, bytes(value[PART_HEAD_SIZE:])


def join_parts(values):
    """(key id, fingerprint, wrapped key) of an epoch's EXT_SEAL_KEY values, in any order."""
    chunks = {}
    head = None
    for value in values:
        key_id, index, _, fp, chunk = parse_key_part(value)
        if head is None:
            head = (key_id, fp)
        elif head != (key_id, fp):
            raise SealError("key parts of different keys")
        chunks[index] = chunk
    if head is None or len(chunks) != seal.PARTS:
        raise SealError("key parts missing")
    return head[0], head[1], b"".join(chunks[i] for i in range(seal.PARTS))


def key_id_of(value):
    """The key id an EXT_EMV_SEALED value names; SealError if it is too short to be one."""
    if len(value) < SEALED_MIN:
        raise SealError("sealed data of %d bytes" % len(value))
    return struct.unpack("<I", bytes(value[:KEY_ID_SIZE]))[0]


def open_data(key, value, token):
    """The plaintext of an EXT_EMV_SEALED value under its epoch key; SealError if anything was altered."""
    key_id_of(value)
    try:
        return crypto.unseal(key, bytes(value[KEY_ID_SIZE:]), token)
    except crypto.CryptoError as e:
        raise SealError(str(e)) from None
