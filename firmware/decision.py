"""Deciding a tap offline: what was presented, is it acceptable, what does it cost.

Pure logic (no board, no I/O), so it is tested on CPython and inside MicroPython alike.  The first
slice knows one credential (EMVCo CPM payment codes) and one flat fare; a repeated presentation of the
same payment code (same card token and transaction counter) is recognised as already paid instead of
being charged twice — that is what makes "tap again after a reboot" safe.
"""

from firmware import identity
from protocol import cpm, record

FLAT_FARE = 200  # fen: 2.00 yuan
CURRENCY_CNY = 156
FARE_ID_FLAT = 1
RECENT = 32

ACCEPT = 1
DECLINE = 2
ALREADY_PAID = 3


class Decision:
    def __init__(self, outcome, reason=record.REASON_NONE, kind=0, token=None, extensions=(), amount=0,
                 seq=0, atc=None):
        self.outcome = outcome
        self.atc = atc
        self.reason = reason
        self.kind = kind
        self.token = token
        self.extensions = extensions
        self.amount = amount
        self.seq = seq  # for ALREADY_PAID: the sequence number of the original tap

    def reason_text(self):
        return record.REASON_TEXT.get(self.reason, "declined")


class Decider:
    def __init__(self, salt, fare=FLAT_FARE):
        self.salt = salt
        self.fare = fare
        self._recent = []  # (token, atc, seq), newest last, bounded

    def remember(self, token, atc, seq):
        self._recent.append((token, atc, seq))
        if len(self._recent) > RECENT:
            self._recent.pop(0)

    def remember_record(self, data):
        rec = record.decode(data)
        self.remember(rec["token"], rec["ext"].get(record.EXT_ATC), rec["seq"])

    def decide(self, line):
        if not cpm.is_cpm(line):
            return Decision(DECLINE, record.REASON_UNKNOWN_FORMAT)
        try:
            objects = cpm.decode(line)
            account = cpm.account_number(objects)
        except (cpm.CpmError, UnicodeError):
            return Decision(DECLINE, record.REASON_MALFORMED, record.KIND_QR_CPM)
        token = identity.credential_token(self.salt, account)
        atc = cpm.tlv.find(objects, cpm.T_ATC)
        for seen_token, seen_atc, seq in self._recent:
            if seen_token == token and seen_atc == atc:
                return Decision(ALREADY_PAID, kind=record.KIND_QR_CPM, token=token, amount=self.fare, seq=seq)
        ext = []
        if atc is not None:
            ext.append((record.EXT_ATC, atc))
        aid = cpm.tlv.find(objects, cpm.T_AID)
        if aid is not None:
            ext.append((record.EXT_AID, aid))
        return Decision(ACCEPT, kind=record.KIND_QR_CPM, token=token, extensions=ext, amount=self.fare, atc=atc)
