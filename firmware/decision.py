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

    def _repeat(self, token, atc, kind):
        for seen_token, seen_atc, seq in self._recent:
            if seen_token == token and seen_atc == atc:
                return Decision(ALREADY_PAID, kind=kind, token=token, amount=self.fare, seq=seq)
        return None

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
        repeat = self._repeat(token, atc, record.KIND_QR_CPM)
        if repeat:
            return repeat
        ext = []
        if atc is not None:
            ext.append((record.EXT_ATC, atc))
        aid = cpm.tlv.find(objects, cpm.T_AID)
        if aid is not None:
            ext.append((record.EXT_AID, aid))
        return Decision(ACCEPT, kind=record.KIND_QR_CPM, token=token, extensions=ext, amount=self.fare, atc=atc)

    def decide_emv(self, card, data_key, nonce):
        """A contactless read (firmware.emv.read's dict) at the flat fare, authorised later by the host.

        The PAN becomes the salted token here and the sensitive part is sealed at once: the decision,
        and so the record, carries no card number, track 2 or cryptogram in clear.
        """
        token = identity.credential_token(self.salt, card["pan"])
        atc = card["atc"]
        if card["cid"][0] & 0xC0 == 0x00:  # AAC: the card declined offline
            return Decision(DECLINE, record.REASON_CARD_DECLINED, record.KIND_EMV_CONTACTLESS, token=token)
        repeat = self._repeat(token, atc, record.KIND_EMV_CONTACTLESS)
        if repeat:
            return repeat
        from firmware import emv  # here, not at the top: a terminal without NFC never loads them
        from protocol import crypto

        ext = [(record.EXT_ATC, atc), (record.EXT_AID, card["aid"]),
               (record.EXT_EMV_SEALED, crypto.seal(data_key, nonce, emv.sensitive(card), token)),
               (record.EXT_EMV_DATA, emv.clear_data(card))]
        return Decision(ACCEPT, kind=record.KIND_EMV_CONTACTLESS, token=token, extensions=ext, amount=self.fare,
                        atc=atc)
