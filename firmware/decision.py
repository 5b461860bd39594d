"""Deciding a tap offline: what was presented, is it acceptable, what does it cost.

Pure logic (no board, no I/O), so it is tested on CPython and inside MicroPython alike. Credentials: EMV
QRCPS CPM payment codes (checked as protocol/cpm.py check says, card data sealed) at one flat fare — a
repeated presentation of the same payment code (same card token and transaction counter) is recognised
as already paid instead of being charged twice, which is what makes "tap again after a reboot" safe —
and signed tickets (protocol/ticket.py), checked against the trusted issuer keys, the board's clock and
the entries the ticket allows.

Fares: FLAT_FARE for every payment credential unless a fleet fare bundle (protocol/fleet.py) is
active; then its fare table maps a credential kind (record.KIND_*) to its fare, and a kind it leaves
out keeps the default (tickets: 0, they are prepaid).  Fares, ticket keys, the fleet token key and the
deny list are one active configuration (firmware/config/active.py) that `use()` replaces whole when a
bundle is activated, so the next tap already pays the new fare.

Tickets: a verified ticket inside its window is admitted or refused by firmware/gate.py (entries,
party size, anti-passback; student passes on a school bus), from the durable per-credential state
when the terminal has one (`state`); without it entry counts are kept in RAM only (at most MAX_TICKETS
tickets, oldest forgotten first) and rebuilt at boot from the journal's recent records (the last RECENT
taps), so after a reboot a ticket used longer ago than that may be admitted again up to its allowance.
"""

import struct

from firmware.config.active import Active
from protocol import cpm, record, ticket, tokens

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
ONLINE = 4  # a payment code: ask the host (decide_online), or the offline policy (decide_offline)

POLICY_DECLINE = "decline"  # link down: decline numeric payment codes with "network needed" (default)
POLICY_DEFER = "defer"  # link down: accept up to a per-code cap, code sealed, authorised later
PAYCODE_TAG = 0xDF50  # the sealed TLV tag holding a deferred payment code's digits (SPEC "Payment codes")

# A contactless read that failed, by its code (firmware/emv_apdu.py: READ, UNSUPPORTED, EXPIRED, NOT_EFFECTIVE,
# CVM, REFUSED from the EMV reader; CARD_REMOVED, READER_FAILED from the NFC task) -> reason.
_CARD_ERRORS = {0: record.REASON_CARD_READ, 1: record.REASON_CARD_UNSUPPORTED, 2: record.REASON_CARD_EXPIRED,
                3: record.REASON_CARD_NOT_EFFECTIVE, 4: record.REASON_CARD_CVM, 5: record.REASON_CARD_REFUSED,
                6: record.REASON_CARD_REMOVED, 7: record.REASON_CARD_READ}


class Decision:
    def __init__(self, outcome, reason=record.REASON_NONE, kind=0, token=None, extensions=(), amount=0,
                 seq=0, atc=None, fare_id=FARE_ID_FLAT, entry=0, code=None, risk=None, state=None):
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
        self.code = code  # ONLINE: (family, digits) of the payment code, in RAM only
        self.risk = risk  # firmware/risk.py: the credential's state entry before this tap, counted once journalled
        self.state = state  # firmware/gate.py: a ticket's or pass's tapstate.Entry after this tap, put once journalled
        self.discount = 0  # fen a promotion took off `amount` when the record was built (Decider.promote)

    def reason_text(self):
        return record.REASON_TEXT.get(self.reason, "declined")


class Decider:
    def __init__(self, token_key, fare=FLAT_FARE, keyring=None, deny=None, sealer=None, state=None):
        if token_key is not None and not isinstance(token_key, tuple):
            token_key = (1, token_key)  # a bare key is version 1
        # fares, ticket keys, fleet token key and deny list: one object, swapped whole (firmware/config/active.py)
        self.active = Active({}, keyring, token_key, deny)
        self.sealer = sealer  # sealer(plaintext, associated) -> bytes: card data only the host may open
        self.fare = fare  # the default fare of a payment kind the active fare table leaves out
        self._key_ext = None  # (token key, its EXT_TOKEN_KEY extension), made once per key
        self._recent = []  # (token, atc, seq), newest last, bounded
        self._entries = {}  # ticket token -> entries used
        self._ticket_order = []  # ticket tokens, oldest first, bounded by MAX_TICKETS
        self.flash_root = None  # where ride-code roots are read on the first ride code (app.py sets it)
        self.rides = None  # firmware.ridecodes.Rides, loaded on the first ride code
        self.rides_journalled = []  # (token, EXT_RIDE) of ride codes in the journal's recent records, at boot
        self.state = state  # firmware.tapstate.TapState: durable per-credential state, or None
        self.bus_stops = None  # firmware.bus.BusStops: where the bus is (app.py, with a bus profile)
        self.promotions = None  # firmware.promotions.Promotions: the county's discounts (load_promotions)
        self._promo_source = None  # (flash root, device key) they are loaded from once a profile has some

    def use(self, kind, value):
        """A just-activated bundle (protocol/fleet.py KIND_*): the next decision uses it, no reboot."""
        self.active = self.active.with_bundle(kind, value)

    def _token_key_ext(self):
        """EXT_TOKEN_KEY naming the version of the active token key (asked for only when there is one)."""
        key = self.active.token_key
        if self._key_ext is None or self._key_ext[0] is not key:
            self._key_ext = (key, (record.EXT_TOKEN_KEY, struct.pack("<I", key[0] if key else 0)))
        return self._key_ext[1]

    def token_of(self, account):
        """A card's fleet-wide token (protocol/tokens.py), the same on every terminal; None without a key."""
        key = self.active.token_key
        return None if key is None else tokens.token(key[1], account)

    def prepare_idle(self):
        """Work that may stall the CPU, done while no passenger waits: a new ride-code issuer's key table."""
        if self.rides is not None:
            self.rides.prepare_idle()

    def remember(self, token, atc, seq, kind=record.KIND_QR_CPM):
        if kind == record.KIND_RIDE_CODE:
            rides = self.rides
            if rides is not None:  # always, once a ride code was decided
                rides.remember(token, atc)
            return
        if kind == record.KIND_TICKET:
            self._count_entry(token)
            return
        if kind == record.KIND_SCHOOL_PASS:  # firmware/gate.py keeps it in the tap state
            return
        self._recent.append((token, atc, seq))
        if len(self._recent) > RECENT:
            self._recent.pop(0)

    def account(self, e, rec):
        """The state entry `e` (or None) after accepted journal record `rec`, None when the record changes
        nothing: boot replays the journal into the tap state with it (firmware/tapstate.py replay)."""
        if rec["decision"] != record.ACCEPTED:
            return None
        if rec["kind"] == record.KIND_TICKET or rec["kind"] == record.KIND_SCHOOL_PASS:
            from firmware import gate  # entries used, admissions, who is on board

            return gate.account(e, rec)
        from firmware import risk  # payment credentials: counter, window and daily counts

        return risk.replay(e, rec, getattr(self.active, "profile", None))

    def remember_record(self, data):
        rec = record.decode(data)
        if rec["decision"] != record.ACCEPTED:  # a declined tap paid nothing and used no ticket entry
            return
        if self.promotions is not None:  # a discount the budget file may have missed before a power cut
            self.promotions.replay(rec, self.active.profile)
        if rec["kind"] == record.KIND_RIDE_CODE:  # kept for firmware/ridecodes.py, loaded on the next ride code
            self.rides_journalled.append((rec["token"], rec["ext"].get(record.EXT_RIDE)))
            return
        self.remember(rec["token"], rec["ext"].get(record.EXT_ATC), rec["seq"], rec["kind"])

    def amount_for(self, kind):
        """The one amount a tap of `kind` is charged: what a card is asked to sign (nfc.py fills the
        PDOL with it) is what its record charges.  A kind the active fare table leaves out: the default
        fare, or 0 for a (prepaid) ticket."""
        profile = self.active.profile
        if profile is not None and "bus" in profile and kind != record.KIND_TICKET:
            from firmware import bus

            return bus.base_fare(profile["bus"], self.bus_stops)[0]
        return self.active.fares.get(kind, 0 if kind == record.KIND_TICKET else self.fare)

    def load_promotions(self, root, device_key):
        """The county's promotions (firmware/promotions.py), keyed from the terminal's device key; the code
        is loaded only once the active profile has a "promotions" section."""
        self._promo_source = (root, device_key)
        self._promotions_ready()

    def _promotions_ready(self):
        profile = self.active.profile
        if self.promotions is None and self._promo_source is not None and profile is not None \
                and "promotions" in profile:
            from firmware.promotions import Promotions

            self.promotions = Promotions(self._promo_source[0], self._promo_source[1])
        return self.promotions

    def promotion_offers(self, d, now):
        """The promotions an accepted tap `d` may draw when its record is built (None: none)."""
        promos = self._promotions_ready()
        if promos is None:
            return None
        return promos.offers(self.active.profile, d.kind, d.amount, now)

    def promote(self, d, offers, terminal, seq, now):
        """While record `seq` of `d` is built: the draw; a discount lowers d.amount and adds its extensions
        (protocol/promotion.py), d.discount says how much."""
        promos = self.promotions
        won = None if promos is None else promos.draw(offers, terminal, seq, now, d.kind, d.amount, d.token)
        if won is not None:
            from protocol import promotion

            d.amount -= won[1]
            d.discount = won[1]
            d.extensions = list(d.extensions) + promotion.extensions(won[0], won[1], won[2])
        return won

    def _denied(self, token):
        deny = self.active.deny
        return deny is not None and deny.contains(token)

    def _repeat(self, token, atc, kind):
        for seen_token, seen_atc, seq in self._recent:
            if seen_token == token and seen_atc == atc:
                return Decision(ALREADY_PAID, kind=kind, token=token, amount=self.amount_for(kind), seq=seq)
        return None

    def check_risk(self, kind, token, atc, amount, now):
        """(refusal or None, the credential's state entry before this tap): firmware/risk.py, with state only."""
        if self.state is None:
            return None, None
        from firmware import risk

        return risk.check(self, kind, token, atc, amount, now)

    def _count_entry(self, token):
        used = self._entries.get(token)
        if used is None:
            self._ticket_order.append(token)
            if len(self._ticket_order) > MAX_TICKETS:
                del self._entries[self._ticket_order.pop(0)]
            used = 0
        self._entries[token] = used + 1

    def decide(self, line, now=None):
        """The decision for one scanner line; `now`: the board clock (seconds since 1970), None if unknown."""
        return self.priced(self._decide(line, now), now)

    def priced(self, d, now):
        """`d` with the profile's product rules on its amount (a bus ride: firmware/bus.py)."""
        profile = self.active.profile
        if profile is None or d.outcome not in (ACCEPT, ONLINE) or d.kind == record.KIND_TICKET:
            return d
        if profile["profile"] == "school" and d.kind != record.KIND_SCHOOL_PASS:  # the school bus takes no money
            return Decision(DECLINE, record.REASON_PASSES_ONLY, d.kind, token=d.token)
        if "bus" in profile:
            from firmware import bus

            return bus.price(self, d, now)
        return d

    def _decide(self, line, now):
        if ticket.is_ticket(line):
            return self._decide_ticket(line, now)
        if line[:4] == (b"ZR1." if isinstance(line, bytes) else "ZR1."):  # a ride code: firmware/ridecodes.py
            if self.rides is None:
                from firmware.ridecodes import Rides  # loaded on the first ride code

                self.rides = Rides(self.flash_root, self.rides_journalled)
                self.rides_journalled = []
            return self.rides.decide(self, line, now)
        if not cpm.is_cpm(line):
            from protocol import paycode  # loaded by the first line that is none of the above, not at boot

            if paycode.is_numeric(line):
                return self._decide_paycode(line, now)
            return Decision(DECLINE, record.REASON_UNKNOWN_FORMAT)
        return self._decide_cpm(line, now)

    # -- numeric payment codes (protocol/paycode.py): decided online, or by the offline policy -------

    def _decide_paycode(self, line, now=None):
        """A numeric payment code: ONLINE (the caller asks the host, then decide_online) unless its own
        form, the token key, the deny list or a repeat decides it here."""
        from protocol import paycode

        kind = record.KIND_PAYMENT_CODE
        got = paycode.classify(line)
        if got is None:
            if paycode.family_of(line) is None:
                return Decision(DECLINE, record.REASON_UNKNOWN_FORMAT)
            return Decision(DECLINE, record.REASON_PAYCODE_MALFORMED, kind)
        token = self.token_of(got[1])
        if token is None:
            return Decision(DECLINE, record.REASON_NO_TOKEN_KEY, kind)
        if self._denied(token):
            return Decision(DECLINE, record.REASON_DENY_LISTED, kind, token=token)
        repeat = self._repeat(token, None, kind)  # a one-time code shown again after it paid
        if repeat:
            return repeat
        refused, before = self.check_risk(kind, token, None, self.amount_for(kind), now)
        if refused:
            return refused
        return Decision(ONLINE, kind=kind, token=token, amount=self.amount_for(kind), code=got, risk=before)

    def decide_online(self, d, request_id, result):
        """The host's ONLINE_RESULT (a link.decode dict, None when none came by the deadline) for the
        ONLINE decision `d` sent as `request_id`: approved is ACCEPT with the approval in EXT_PAYCODE,
        anything else a decline that names the request (the host reverses a late approval)."""
        from protocol import link

        kind = record.KIND_PAYMENT_CODE
        head = struct.pack("<BBI", record.PATH_ONLINE, d.code[0], request_id)
        if result is not None and result["result"] == link.ONLINE_APPROVED:
            ext = [self._token_key_ext(), (record.EXT_PAYCODE, head + result["approval"] + result["reference"])]
            ext += d.extensions  # what the profile's rules added to the amount asked for (priced)
            return Decision(ACCEPT, kind=kind, token=d.token, extensions=ext, amount=d.amount, risk=d.risk)
        if result is not None and result["result"] == link.ONLINE_DECLINED:
            reason = record.REASON_PAYCODE_DECLINED
        else:
            reason = record.REASON_PAYCODE_NO_ANSWER
        return Decision(DECLINE, reason, kind, token=d.token, extensions=[(record.EXT_PAYCODE, head)])

    def decide_offline(self, d, policy, cap):
        """The ONLINE decision `d` with the uplink down: POLICY_DECLINE declines "network needed";
        POLICY_DEFER accepts a fare up to `cap` fen with the code sealed to the host, like card data."""
        kind = record.KIND_PAYMENT_CODE
        if policy != POLICY_DEFER:
            return Decision(DECLINE, record.REASON_PAYCODE_OFFLINE, kind, token=d.token)
        if d.amount > cap:
            return Decision(DECLINE, record.REASON_PAYCODE_OVER_CAP, kind, token=d.token)
        from protocol import tlv

        sealed, refused = self._sealed(tlv.encode(PAYCODE_TAG, d.code[1]), d.token, kind)
        if refused:
            return refused
        ext = [self._token_key_ext(), (record.EXT_PAYCODE, struct.pack("<BBI", record.PATH_DEFERRED, d.code[0], 0)),
               (record.EXT_EMV_SEALED, sealed)]
        ext += d.extensions  # what the profile's rules added to the amount (priced)
        return Decision(ACCEPT, kind=kind, token=d.token, extensions=ext, amount=d.amount, risk=d.risk)

    def _decide_cpm(self, line, now):
        """An EMV QRCPS payment code: the checks it carries (protocol/cpm.py check), then the deny list
        and a repeat; accepted, it is authorised later by the host from the sealed and clear card data.
        A board clock that was never set (before CLOCK_VALID_FROM) skips only the expiry check: the bus
        keeps taking fares and the issuer checks expiry when it authorises."""
        kind = record.KIND_QR_CPM
        try:
            tags = cpm.payment_data(cpm.decode(line))
        except (cpm.CpmError, UnicodeError):
            return Decision(DECLINE, record.REASON_MALFORMED, kind)
        reason = cpm.check(tags, now if now is not None and now >= CLOCK_VALID_FROM else None)
        if reason == record.REASON_CPM_NO_ACCOUNT or reason == record.REASON_MALFORMED:
            return Decision(DECLINE, reason, kind)
        try:
            token = self.token_of(cpm.account_number(tags))
        except (cpm.CpmError, UnicodeError):
            return Decision(DECLINE, reason or record.REASON_CPM_BAD_PAN, kind)
        if token is None:
            return Decision(DECLINE, record.REASON_NO_TOKEN_KEY, kind)
        if reason != record.REASON_NONE:
            return Decision(DECLINE, reason, kind, token=token)
        if self._denied(token):
            return Decision(DECLINE, record.REASON_DENY_LISTED, kind, token=token)
        atc = tags[cpm.T_ATC]
        repeat = self._repeat(token, atc, kind)
        if repeat:
            return repeat
        refused, before = self.check_risk(kind, token, atc, self.amount_for(kind), now)
        if refused:
            return refused
        ext = [self._token_key_ext(), (record.EXT_ATC, atc)]
        aid = tags.get(cpm.T_AID)
        if aid is not None:
            ext.append((record.EXT_AID, aid))
        sealed, refused = self._sealed(cpm.tlv_of(tags, cpm.SEALED_TAGS), token, kind)
        if refused:
            return refused
        ext.append((record.EXT_EMV_SEALED, sealed))
        ext.append((record.EXT_EMV_DATA, cpm.tlv_of(tags, cpm.CLEAR_TAGS)))
        return Decision(ACCEPT, kind=kind, token=token, extensions=ext, amount=self.amount_for(kind), atc=atc,
                        risk=before)

    def _decide_ticket(self, line, now):
        try:
            fields = self.active.keyring.verify(line)
            if now is None or now < CLOCK_VALID_FROM:
                return Decision(DECLINE, record.REASON_TICKET_NO_CLOCK, record.KIND_TICKET)
            ticket.check_window(fields, now)
        except ticket.TicketError as e:
            return Decision(DECLINE, _TICKET_REASONS.get(e.code, record.REASON_TICKET_MALFORMED), record.KIND_TICKET)
        except (ValueError, UnicodeError):
            return Decision(DECLINE, record.REASON_TICKET_MALFORMED, record.KIND_TICKET)
        token = tokens.ticket_token(fields["issuer"], fields["ticket_id"])
        from firmware import gate  # loaded by the first ticket

        profile = self.active.profile
        if profile is not None and profile["profile"] == "school":
            return gate.student(self, fields, token, now)
        return gate.ticket(self, fields, token, now)

    # -- outcomes decided before or after a credential's own checks: every one has its reason here ------

    def decide_card_error(self, code):
        """A contactless read that failed with `code` (see _CARD_ERRORS): declined with its reason."""
        return Decision(DECLINE, _CARD_ERRORS.get(code, record.REASON_CARD_READ), record.KIND_EMV_CONTACTLESS)

    @staticmethod
    def decide_too_long():
        """A scanner line longer than the driver's buffer: no credential to decide on."""
        return Decision(DECLINE, record.REASON_TOO_LONG)

    @staticmethod
    def decide_journal_full(d):
        """An accepted tap the journal has no room for: declined, never charged, never overwriting."""
        return Decision(DECLINE, record.REASON_JOURNAL_FULL, d.kind, token=d.token)

    @staticmethod
    def decide_failure():
        """The terminal failed while deciding (a bug): declined, never charged."""
        return Decision(DECLINE, record.REASON_TERMINAL_ERROR)

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

    def _sealed(self, plaintext, token, kind):
        """(sealed extension value, None), or (None, the decline) when card data cannot be sealed."""
        from firmware import sealing  # loaded already on a terminal (app.py seals to the host)

        try:
            return self.seal(plaintext, token), None
        except sealing.Unavailable as e:
            return None, Decision(DECLINE, e.args[0], kind, token=token)

    def decide_emv(self, card, now=None):
        """A contactless read (firmware.emv.read's dict), authorised later by the host: an ARQC is
        charged the amount the card signed (the reader asked amount_for), an AAC or a TC is declined.

        The PAN becomes the fleet token here and the sensitive part is sealed at once: the decision,
        and so the record, carries no card number, track 2 or cryptogram in clear.
        """
        token = self.token_of(card["pan"])
        if token is None:
            return Decision(DECLINE, record.REASON_NO_TOKEN_KEY, record.KIND_EMV_CONTACTLESS)
        if self._denied(token):
            return Decision(DECLINE, record.REASON_DENY_LISTED, record.KIND_EMV_CONTACTLESS, token=token)
        atc = card["atc"]
        kind = card["cid"][0] & 0xC0
        if kind == 0x00:  # AAC: the card declined offline
            return Decision(DECLINE, record.REASON_CARD_DECLINED, record.KIND_EMV_CONTACTLESS, token=token)
        if kind != 0x80:  # TC: approved offline, no online cryptogram the host could authorise later
            return Decision(DECLINE, record.REASON_CARD_OFFLINE, record.KIND_EMV_CONTACTLESS, token=token)
        repeat = self._repeat(token, atc, record.KIND_EMV_CONTACTLESS)
        if repeat:
            return repeat
        amount = card.get("amount", self.amount_for(record.KIND_EMV_CONTACTLESS))
        refused, before = self.check_risk(record.KIND_EMV_CONTACTLESS, token, atc, amount, now)
        if refused:
            return refused
        from firmware import emv_data as emv  # here, not at the top: a terminal without NFC never loads it

        sealed, refused = self._sealed(emv.sensitive(card), token, record.KIND_EMV_CONTACTLESS)
        if refused:
            return refused
        ext = [self._token_key_ext(), (record.EXT_ATC, atc), (record.EXT_AID, card["aid"]),
               (record.EXT_EMV_SEALED, sealed),
               (record.EXT_EMV_DATA, emv.clear_data(card))]
        return Decision(ACCEPT, kind=record.KIND_EMV_CONTACTLESS, token=token, extensions=ext, amount=amount, atc=atc,
                        risk=before)
