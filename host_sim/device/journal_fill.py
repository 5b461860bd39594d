"""Filling the terminal's journal for `bench drain`, on the board stopped at its REPL.

Run through mpremote: `run` this file, then `exec` one call of fill(count).  Each record is built
the way a QR tap journals it (fleet token under the terminal's token key, EXT_TOKEN_KEY, ATC and AID
extensions, firmware/app.py's field values) and appended under the terminal's journal key."""

import board
from firmware import identity
from firmware.journal import Journal
from protocol import crypto, record, tokens

AID = bytes.fromhex("A000000333010101")
CARDS = ("6212345678901234567", "6214830012345678", "6228480000000000018", "6217000010000000005")


def tap_record(tid, token, when, atc, key_ext):
    """The record builder Journal.append() calls with the sequence number: one QR tap's record."""
    def build(seq):
        return record.encode(tid, seq, when, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, record.REASON_NONE, 1,
                             token, [key_ext, (record.EXT_ATC, atc.to_bytes(2, "big")), (record.EXT_AID, AID)])
    return build


def fill(count):
    """Append `count` records; print "filled=<depth>,<last seq>,<record bytes>,<erases on the tap path>"."""
    root = board.mount_flash()
    salt = identity.salt(root)
    j = Journal(board.journal_partition(), crypto.derive(salt, b"journal mac")).open()
    tid = identity.terminal_id(board)
    now = int(board.time_s())
    version, key = identity.token_key(root) or (0, bytes(32))
    key_ext = (record.EXT_TOKEN_KEY, version.to_bytes(4, "little"))
    made = [tokens.token(key, c) for c in CARDS]
    size = 0
    for i in range(count):
        build = tap_record(tid, made[i % 4], now + i, 100 + i // 4, key_ext)
        seq = j.append(build)
        size += len(build(seq))
        if i % 32 == 0:
            j.prepare()
    print("filled=%d,%d,%d,%d" % (j.depth(), j.next_seq - 1, size, j.tap_erases))
