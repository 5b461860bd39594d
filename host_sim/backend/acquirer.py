"""A simulated acquirer: authorises deferred transactions after the fact, the mass-transit way.

Terminals accept taps offline; the collector later asks the acquirer to authorise each stored record.
A decline cannot undo the ride, so the card's token goes on the deny list and the terminal refuses it
at its next tap once the deny-list update has arrived.  Rules are configurable and deterministic
(seeded), so tests and demos can reproduce a run:

    {"decline_tokens": ["<hex token>", ...],   # always declined (a blocked card)
     "decline_atcs": [101, ...],                 # declined by the record's transaction counter (tests:
                                                 # the token is salted per terminal, the ATC is not)
     "decline_rate": 0.0,                        # fraction declined at random ("insufficient funds")
     "max_amount": 100000,                       # fen; above is declined ("over limit")
     "seed": 1}
"""

import hashlib
import json

from host_sim.backend.store import Store

DEFAULT_RULES = {"decline_tokens": [], "decline_atcs": [], "decline_rate": 0.0, "max_amount": 100000, "seed": 1}


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


def authorise(store, acquirer, rows):
    """Decide each (terminal, seq, token, amount, atc) of an accepted record not decided yet; declines
    join the deny list.  Returns (approved, declined).

    Runs inside the caller's transaction (the collector decides a frame's records in the transaction
    that stores them, so both commit together): a record is decided once, whoever sends it again."""
    approved = declined = 0
    for terminal, seq, token, amount, atc in rows:
        ok, reason = acquirer.decide(terminal, seq, token, amount, atc)
        if not store.decide(terminal, seq, ok, reason):
            continue  # decided before
        if ok:
            approved += 1
        else:
            declined += 1
            store.deny(token, reason)
    return approved, declined


def authorise_pending(store, acquirer):
    """Authorise every accepted record that has no decision yet, in one transaction (the collector's
    catch-up at start, and the `acquirer` command).  Returns (approved, declined, version)."""
    with store.transaction():
        approved, declined = authorise(store, acquirer, store.pending_authorisations())
        return approved, declined, store.deny_list_version()


def load_rules(path):
    with open(path) as f:
        return json.load(f)


def main(args):
    store = Store(args.db)
    rules = load_rules(args.rules) if args.rules else None
    try:
        approved, declined, version = authorise_pending(store, Acquirer(rules))
    finally:
        store.close()
    print(json.dumps({"approved": approved, "declined": declined, "deny_list_version": version}))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--rules", help="JSON file with acquirer rules (see module docstring)")
