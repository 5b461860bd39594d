"""Deciding a tap offline: what was presented, is it acceptable, what does it cost.

Pure logic (no board, no I/O), so it is tested on CPython and inside MicroPython alike.  Credentials:
EMVCo CPM payment codes at one flat fare — a repeated presentation of the same payment code (same card
token and transaction counter) is recognised as already paid instead of being charged twice, which is
what makes "tap again after a reboot" safe — and signed tickets (protocol/ticket.py), checked against
the trusted issuer keys, the board's clock and the entries the ticket allows.

Fares: FLAT_FARE for every payment credential unless a fleet fare bundle (protocol/fleet.py) is
active; then `fares` maps a credential kind (record.KIND_*) to its fare, and a kind it leaves out
keeps the default (tickets: 0, they are prepaid).  The terminal swaps `fares` (and `keyring`) when a
new bundle is activated, so the next tap already pays the new fare.

Ticket entry counts are kept in RAM only (at most MAX_TICKETS tickets, oldest forgotten first) and
rebuilt at boot from the journal's recent records (the last RECENT taps), so after a reboot a ticket
used longer ago than that may be admitted again up to its allowance.
"""

import struct

from firmware import identity
from protocol import cpm, record, ticket

FLAT_FARE = 200  # fen: 2.00 yuan
CURRENCY_CNY = 156
FARE_ID_FLAT = 1
FARE_ID_TICKET = 2
RECENT = 32
MAX_TICKETS = 64
CLOCK_VALID_FROM = 1704067200  # 2024-01-01: a board clock before this was never set

_TICKET_REASONS = {
    ticket.MALFORMED: record.REASON_TICKET_MALFORMED,
    ticket.UNKNOWN_KEY: record.REASON_TICKET_UNKNOWN_KEY,
    ticket.REVOKED_KEY: record.REASON_TICKET_KEY_REVOKED,
    ticket.BAD_SIGNATURE: record.REASON_TICKET_BAD_SIGNATURE,
    ticket.NOT_YET_VALID: record.REASON_TICKET_NOT_YET_VALID,
    ticket.EXPIRED: record.REASON_TICKET_EXPIRED,
    ticket.USED_UP: record.REASON_TICKET_USED_UP,
    ticket.REVOKED_TICKET: record.REASON_TICKET_REVOKED,
}

ACCEPT = 1
DECLINE = 2
ALREADY_PAID = 3


class Decision:
    def __init__(self, outcome, reason=record.REASON_NONE, kind=0, token=None, extensions=(), amount=0,
                 seq=0, atc=None, fare_id=FARE_ID_FLAT, entry=0):
        self.outcome = outcome
        self.entry = entry  # tickets: which of its allowed entries this one is (1-based)
        self.fare_id = fare_id
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
    def __init__(self, salt, fare=FLAT_FARE, keyring=None, deny=None, sealer=None):
        self.salt = salt
        self.sealer = sealer  # sealer(plaintext, associated) -> bytes: card data only the host may open
        self.deny = deny  # firmware.denylist.DenyList or None: tokens the acquirer declined
        self.fare = fare
        self.fares = {}  # credential kind -> fare (fen), from the active fleet fare bundle
        self.keyring = keyring if keyring is not None else ticket.Keyring()
        self._recent = []  # (token, atc, seq), newest last, bounded
        self._entries = {}  # ticket token -> entries used
        self._ticket_order = []  # ticket tokens, oldest first, bounded by MAX_TICKETS

    def remember(self, token, atc, seq, kind=record.KIND_QR_CPM):
        if kind == record.KIND_TICKET:
            self._count_entry(token)
            return
        self._recent.append((token, atc, seq))
        if len(self._recent) > RECENT:
            self._recent.pop(0)

    def remember_record(self, data):
        rec = record.decode(data)
        if rec["decision"] != record.ACCEPTED:  # a declined tap paid nothing and used no ticket entry
            return
        self.remember(rec["token"], rec["ext"].get(record.EXT_ATC), rec["seq"], rec["kind"])

    def fare_for(self, kind):
        return self.fares.get(kind, 0 if kind == record.KIND_TICKET else self.fare)

    def _denied(self, token):
        return self.deny is not None and self.deny.contains(token)

    def _repeat(self, token, atc, kind):
        for seen_token, seen_atc, seq in self._recent:
            if seen_token == token and seen_atc == atc:
                return Decision(ALREADY_PAID, kind=kind, token=token, amount=self.fare_for(kind), seq=seq)
        return None

    def _count_entry(self, token):
        used = self._entries.get(token)
        if used is None:
            self._ticket_order.append(token)
            if len(self._ticket_order) > MAX_TICKETS:
                del self._entries[self._ticket_order.pop(0)]
            used = 0
        self._entries[token] = used + 1

    def decide(self, line, now=None):
        """The decision for one scanner line; `now` (board clock, seconds since 1970) for tickets."""
        if ticket.is_ticket(line):
            return self._decide_ticket(line, now)
        if not cpm.is_cpm(line):
            return Decision(DECLINE, record.REASON_UNKNOWN_FORMAT)
        try:
            objects = cpm.decode(line)
            account = cpm.account_number(objects)
        except (cpm.CpmError, UnicodeError):
            return Decision(DECLINE, record.REASON_MALFORMED, record.KIND_QR_CPM)
        token = identity.credential_token(self.salt, account)
        if self._denied(token):
            return Decision(DECLINE, record.REASON_DENY_LISTED, record.KIND_QR_CPM, token=token)
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
        return Decision(ACCEPT, kind=record.KIND_QR_CPM, token=token, extensions=ext,
                        amount=self.fare_for(record.KIND_QR_CPM), atc=atc)

    def _decide_ticket(self, line, now):
        try:
            fields = self.keyring.verify(line)
            if now is None or now < CLOCK_VALID_FROM:
                return Decision(DECLINE, record.REASON_TICKET_NO_CLOCK, record.KIND_TICKET)
            ticket.check_window(fields, now)
        except ticket.TicketError as e:
            return Decision(DECLINE, _TICKET_REASONS.get(e.code, record.REASON_TICKET_MALFORMED), record.KIND_TICKET)
        except (ValueError, UnicodeError):
            return Decision(DECLINE, record.REASON_TICKET_MALFORMED, record.KIND_TICKET)
        token = identity.credential_token(self.salt, "T%d:%s" % (fields["issuer"], fields["ticket_id"].hex()))
        used = self._entries.get(token, 0)
        allowed = fields["entries"]
        if allowed and used >= allowed:
            return Decision(DECLINE, record.REASON_TICKET_USED_UP, record.KIND_TICKET, token=token)
        ext = [(record.EXT_TICKET, struct.pack(">HB8sHB", fields["issuer"], fields["key_id"], fields["ticket_id"],
                                               fields["product"], min(used + 1, 255)))]
        return Decision(ACCEPT, kind=record.KIND_TICKET, token=token, extensions=ext,
                        amount=self.fare_for(record.KIND_TICKET),
                        fare_id=FARE_ID_TICKET, entry=used + 1)

    def seal(self, plaintext, token):
        """Sensitive card data (PAN, track 2, expiry, cryptogram) as the sealed record extension.

        Raises firmware.sealing.Unavailable with the reason the tap declines: REASON_NO_SEAL_KEY without the
        collector's public key (card data is never kept unsealed), REASON_JOURNAL_FULL when the epoch key's
        records cannot be journalled."""
        sealer = self.sealer
        if sealer is None:
            from firmware.sealing import Unavailable

            raise Unavailable(record.REASON_NO_SEAL_KEY)
        return sealer(plaintext, token)

    def decide_emv(self, card):
        """A contactless read (firmware.emv.read's dict) at the flat fare, authorised later by the host.

        The PAN becomes the salted token here and the sensitive part is sealed at once: the decision,
        and so the record, carries no card number, track 2 or cryptogram in clear.
        """
        token = identity.credential_token(self.salt, card["pan"])
        if self._denied(token):
            return Decision(DECLINE, record.REASON_DENY_LISTED, record.KIND_EMV_CONTACTLESS, token=token)
        atc = card["atc"]
        if card["cid"][0] & 0xC0 == 0x00:  # AAC: the card declined offline
            return Decision(DECLINE, record.REASON_CARD_DECLINED, record.KIND_EMV_CONTACTLESS, token=token)
        repeat = self._repeat(token, atc, record.KIND_EMV_CONTACTLESS)
        if repeat:
            return repeat
        from firmware import emv, sealing  # here, not at the top: a terminal without NFC never loads them

        try:
            sealed = self.seal(emv.sensitive(card), token)
        except sealing.Unavailable as e:
            return Decision(DECLINE, e.args[0], record.KIND_EMV_CONTACTLESS, token=token)
        ext = [(record.EXT_ATC, atc), (record.EXT_AID, card["aid"]),
               (record.EXT_EMV_SEALED, sealed),
               (record.EXT_EMV_DATA, emv.clear_data(card))]
        return Decision(ACCEPT, kind=record.KIND_EMV_CONTACTLESS, token=token, extensions=ext,
                        amount=self.fare_for(record.KIND_EMV_CONTACTLESS),
                        atc=atc)
