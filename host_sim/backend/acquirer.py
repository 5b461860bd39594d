"""A simulated acquirer: authorises deferred transactions after the fact, the mass-transit way.

Terminals accept taps offline; the collector later asks the acquirer to authorise each stored record.
A decline cannot undo the ride, so the card's token goes on the deny list and every terminal refuses
it at its next tap once its deny-list update has arrived (tokens are fleet-wide, protocol/tokens.py).
A card its issuer re-enabled comes off the list with `acquirer --db DB --allow TOKEN`.  Rules are
configurable and deterministic (seeded), so tests and demos can reproduce a run:

    {"decline_tokens": ["<hex token>", ...],   # always declined (a blocked card; `tokens show --pan`)
     "decline_atcs": [101, ...],                 # declined by the record's transaction counter
     "decline_rate": 0.0,                        # fraction declined at random ("insufficient funds")
     "max_amount": 100000,                       # fen; above is declined ("over limit")
     "seed": 1,
     "require_cryptogram": false}               # true: a request without card data is declined

They run in the acquirer host (host_sim/backend/acquirer_host.py, behind ISO 8583) after its issuer
simulation checked the card.  A request without card data (a record whose sealed data this host cannot
open yet) is decided by these rules alone while "require_cryptogram" is false.

The collector's side is `run_pass`: pending records out as 0100s, decisions and deny-list entries in.
"""

import hashlib
import json
import logging
import struct
import sys

from host_sim import arguments
from host_sim.backend import acquirer_link, card_data, iso8583, sealing
from host_sim.backend.store import Store
from protocol import record, tlv
from protocol import tokens as tokenfmt

log = logging.getLogger("collector")

DEFAULT_RULES = {"decline_tokens": [], "decline_atcs": [], "decline_rate": 0.0, "max_amount": 100000, "seed": 1,
                 "require_cryptogram": False}
BATCH = 64  # decisions per store transaction


class Acquirer:
    def __init__(self, rules=None):
        self.rules = dict(DEFAULT_RULES, **(rules or {}))
        self._blocked = {bytes.fromhex(t) for t in self.rules["decline_tokens"]}
        self._atcs = {int(a) for a in self.rules["decline_atcs"]}

    def decide(self, terminal, seq, token, amount, atc=None):
        """(approved, reason) for one deferred transaction; deterministic for given rules."""
        if token in self._blocked:
            return False, "card blocked by issuer"
        if atc is not None and int.from_bytes(atc, "big") in self._atcs:
            return False, "card blocked by issuer"
        if amount > self.rules["max_amount"]:
            return False, "over limit"
        if self.rules["decline_rate"] > 0:
            h = hashlib.sha256(("%s|%s|%d" % (self.rules["seed"], terminal, seq)).encode()).digest()
            if int.from_bytes(h[:4], "big") / 2**32 < self.rules["decline_rate"]:
                return False, "insufficient funds"
        return True, None


class Pass:
    """What one authorisation pass did: decisions made, and the reason it stopped early (None: no more pending)."""

    def __init__(self):
        self.approved = self.declined = self.without_card_data = 0
        self.seal_pending = 0  # left pending: the epoch key records of their sealed data are not stored yet
        self.error = None


def link_for(acquirer):
    """The link a collector authorises over: a TcpLink or LocalLink as given, or an in-process acquirer host
    for an Acquirer (rules)."""
    if isinstance(acquirer, Acquirer):
        from host_sim.backend.acquirer_host import AcquirerHost

        return acquirer_link.LocalLink(AcquirerHost(acquirer))
    return acquirer


def run_pass(store, link, opener=None, batch=BATCH):
    """Ask the acquirer about every accepted record without a decision, oldest first.

    No store transaction is open while a request is on the wire: answers are collected and written in
    short transactions of up to `batch` decisions (a decision and its deny-list entry commit together).
    The first unusable answer (acquirer down, slow, garbage) ends the pass with `error` set; what was
    decided is kept, the rest stays pending.  Tickets are prepaid and signed, school passes take no money,
    ride codes are verified offline and billed by the ride-code platform: all approved here, never sent."""
    result = Pass()
    done = []
    try:
        for terminal, seq, raw in store.pending_records():
            rec = record.decode(raw)
            if rec["kind"] == record.KIND_TICKET:
                done.append((terminal, seq, rec, True, "prepaid ticket"))
            elif rec["kind"] == record.KIND_SCHOOL_PASS:  # a pupil's boarding or alighting: no money
                done.append((terminal, seq, rec, True, "school pass: no fare"))
            elif rec["kind"] == record.KIND_RIDE_CODE:  # verified offline; the ride-code platform bills the rider
                done.append((terminal, seq, rec, True, "ride code: billed by the ride-code platform"))
            elif rec["kind"] == record.KIND_PAYMENT_CODE:
                decided = _payment_code(store, link, rec, opener)
                if decided is None:
                    result.seal_pending += 1
                    continue
                done.append((terminal, seq, rec) + decided)
            else:
                try:
                    tags = card_data.card_data(store, rec, opener)
                except sealing.SealPending as e:  # its key records come in a later upload: ask again then
                    result.seal_pending += 1
                    log.debug("record %s/%d stays pending: %s", terminal, seq, e)
                    continue
                except sealing.SealBroken as e:  # never opens: the acquirer decides without card data
                    tags = None
                    log.warning("record %s/%d: sealed card data broken: %s", terminal, seq, e)
                except (card_data.CardDataUnavailable, tlv.TlvError) as e:
                    tags = None
                    log.debug("record %s/%d: no card data for the acquirer: %s", terminal, seq, e)
                if tags is None:
                    result.without_card_data += 1
                ok, reason = acquirer_link.authorise(link, rec, tags)
                done.append((terminal, seq, rec, ok, reason))
            if len(done) >= batch:
                _commit(store, done, result)
    except acquirer_link.AcquirerUnavailable as e:
        result.error = str(e)
    finally:
        _commit(store, done, result)
    return result


def _payment_code(store, link, rec, opener):
    """(approved, reason) of a payment-code record: authorised online already (EXT_PAYCODE path 1), or
    deferred (path 2): its sealed code sent now as an 0200 with DE 48 DA=1.  None: its seal key records
    are not stored yet.  Raises AcquirerUnavailable like authorise()."""
    ext = rec["ext"].get(record.EXT_PAYCODE, b"")
    if len(ext) >= 6 and ext[0] == record.PATH_ONLINE:
        return True, "authorised online"
    try:
        tags = card_data.card_data(store, rec, opener) or {}
    except sealing.SealPending:
        return None
    except (sealing.SealBroken, card_data.CardDataUnavailable, tlv.TlvError) as e:
        return False, "no payment code: %s" % str(e)[:40]
    code = tags.get(0xDF50)  # firmware/decision.PAYCODE_TAG
    if not code or len(ext) < 6:
        return False, "no payment code"
    msg = {"request_id": rec["seq"], "family": ext[1], "amount": rec["amount"], "currency": rec["currency"],
           "code": code}
    sent = acquirer_link.online_request(rec["terminal"].hex(), msg, link.stan.next())
    sent["48"] += iso8583.private_data({"DA": "1"})
    ok, reason, _, _ = acquirer_link.online_outcome(sent, link.exchange(iso8583.encode(sent)),
                                                     iso8583.FINANCIAL_RESPONSE)
    return ok, reason


def used_up_ticket(rec):
    """True for an accepted ticket record whose admission used the ticket's last one (record.EXT_ADMISSION)."""
    value = rec["ext"].get(record.EXT_ADMISSION, b"")
    if rec["kind"] != record.KIND_TICKET or len(value) < 8:
        return False
    used, allowed = struct.unpack_from(">H", value, 0)[0], struct.unpack_from(">H", value, 6)[0]
    return 0 < allowed <= used


def _commit(store, done, result):
    with store.transaction():
        for terminal, seq, rec, ok, reason in done:
            if not store.decide(terminal, seq, ok, reason):
                continue  # decided before (another pass, or the `acquirer` command)
            if ok:
                result.approved += 1
                if used_up_ticket(rec):  # the other gates refuse it too (firmware/gate.py, "used at other gate")
                    store.deny(rec["token"], "ticket used up at terminal %s" % terminal)
            else:
                result.declined += 1
                store.deny(rec["token"], reason, key_version(rec))
    del done[:]


def authorise_pending(store, acquirer, opener=None):
    """One pass (run_pass) with an Acquirer (in process) or a link.  Returns (approved, declined, deny-list
    version); an acquirer that could not be reached leaves the rest pending and is logged."""
    result = run_pass(store, link_for(acquirer), opener)
    if result.error:
        log.warning("acquirer unavailable: %s; %d transactions stay pending", result.error,
                    len(store.pending_records()))
    return result.approved, result.declined, store.deny_list_version()


def key_version(rec):
    """The token key version a decoded record's token was made under (record.EXT_TOKEN_KEY); None if unsaid."""
    value = rec["ext"].get(record.EXT_TOKEN_KEY)
    return int.from_bytes(value, "little") if value is not None and len(value) == 4 else None


def allow(store, hex_tokens, why):
    """Take tokens off the deny list (their issuer re-enabled the cards); {"allowed": [...], "not_listed": [...]}."""
    out = {"allowed": [], "not_listed": []}
    for text in hex_tokens:
        token = bytes.fromhex(text)
        if len(token) != tokenfmt.TOKEN_SIZE:
            raise ValueError("a token is %d bytes (hex), got %r" % (tokenfmt.TOKEN_SIZE, text))
        out["allowed" if store.allow(token, why) is not None else "not_listed"].append(token.hex())
    return out


def load_rules(path):
    with open(path) as f:
        return json.load(f)


def main(args):
    if args.allow:
        return main_allow(args)
    if args.acquirer and args.rules:
        print("acquirer: --rules belong to the acquirer host; give --acquirer or --rules, not both", file=sys.stderr)
        return 2
    try:
        sealing.opener(args.seal_key)  # a bad key file stops here, not at the first record
        link = acquirer_link.TcpLink(args.acquirer) if args.acquirer else \
            link_for(Acquirer(load_rules(args.rules) if args.rules else None))
    except (OSError, ValueError) as e:
        print("acquirer: %s" % e, file=sys.stderr)
        return 2
    store = Store(args.db)
    try:
        result = run_pass(store, link, sealing.opener(args.seal_key))
        out = {"approved": result.approved, "declined": result.declined,
               "deny_list_version": store.deny_list_version(), "pending": len(store.pending_records())}
    finally:
        link.close()
        store.close()
    if result.error:
        out["error"] = result.error
    print(json.dumps(out))
    return 1 if result.error else 0


def main_allow(args):
    """--allow: deny-list removals only, no authorisation pass; terminals get them at their next session."""
    store = Store(args.db)
    try:
        try:
            out = allow(store, args.allow, args.why)
        except ValueError as e:
            print("acquirer: %s" % e, file=sys.stderr)
            return 2
        out["deny_list_version"] = store.deny_list_version()
    finally:
        store.close()
    print(json.dumps(out))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, type=arguments.existing_database, help="the collector's SQLite database")
    parser.add_argument("--rules", type=arguments.json_file,
                        help="JSON file with acquirer rules for an in-process acquirer (module docstring)")
    parser.add_argument("--acquirer", metavar="HOST:PORT", type=arguments.host_port,
                        help="an `acquirer-host` to ask over ISO 8583 instead")
    parser.add_argument("--allow", metavar="TOKEN", action="append",
                        help="take this token (hex) off the deny list, the card's issuer re-enabled it (repeatable;"
                             " no authorisation pass is run)")
    parser.add_argument("--why", default="re-enabled by issuer", help="reason kept with --allow removals")
    parser.add_argument("--seal-key", metavar="PRIVATE.pem", type=arguments.existing_file,
                        help="the collector's key that opens sealed card data (default: the development key)")
