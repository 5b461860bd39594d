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
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS authorisations (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, approved INTEGER NOT NULL, reason TEXT,
    decided REAL DEFAULT (julianday('now')), PRIMARY KEY (terminal, seq));
CREATE TABLE IF NOT EXISTS deny_list (
    token BLOB PRIMARY KEY, reason TEXT, version INTEGER NOT NULL, added REAL DEFAULT (julianday('now')));
CREATE INDEX IF NOT EXISTS deny_list_version ON deny_list (version);
"""

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


def authorise(db, acquirer, rows):
    """Decide each (terminal, seq, token, amount, atc) of an accepted record not decided yet; declines
    join the deny list.  Returns (approved, declined, deny_list_version).

    Runs inside the caller's transaction (the collector decides a frame's records in the transaction
    that stores them, so both commit together): a record is decided once, whoever sends it again."""
    version = deny_list_version(db)
    approved = declined = 0
    for terminal, seq, token, amount, atc in rows:
        ok, reason = acquirer.decide(terminal, seq, token, amount, atc)
        cur = db.execute("INSERT OR IGNORE INTO authorisations (terminal, seq, approved, reason) VALUES (?, ?, ?, ?)",
                         (terminal, seq, int(ok), reason))
        if cur.rowcount != 1:
            continue  # decided before
        if ok:
            approved += 1
            continue
        declined += 1
        if db.execute("SELECT 1 FROM deny_list WHERE token = ?", (token,)).fetchone() is None:
            version += 1
            db.execute("INSERT INTO deny_list (token, reason, version) VALUES (?, ?, ?)", (token, reason, version))
    return approved, declined, version


def authorise_pending(db, acquirer):
    """Authorise every accepted record that has no decision yet, in one transaction of its own (the
    collector's catch-up at start, and the `acquirer` command).  Returns (approved, declined, version)."""
    create_tables(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute(
            "SELECT r.terminal, r.seq, r.token, r.amount, r.atc FROM records r LEFT JOIN authorisations a "
            "ON a.terminal = r.terminal AND a.seq = r.seq WHERE a.seq IS NULL AND r.decision = 1 "
            "ORDER BY r.terminal, r.seq").fetchall()
        result = authorise(db, acquirer, rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return result


def create_tables(db):
    """The acquirer's tables (outside a transaction: executescript commits one that is open)."""
    db.executescript(SCHEMA)


def deny_list_version(db):
    return db.execute("SELECT COALESCE(MAX(version), 0) FROM deny_list").fetchone()[0]


def deny_list_since(db, version, limit=-1):
    """(token, version) added after `version`, oldest first: the delta a terminal at that version needs."""
    return db.execute("SELECT token, version FROM deny_list WHERE version > ? ORDER BY version LIMIT ?",
                      (version, limit)).fetchall()


def load_rules(path):
    with open(path) as f:
        return json.load(f)


def main(args):
    db = sqlite3.connect(args.db)
    rules = load_rules(args.rules) if args.rules else None
    approved, declined, version = authorise_pending(db, Acquirer(rules))
    print(json.dumps({"approved": approved, "declined": declined, "deny_list_version": version}))
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--rules", help="JSON file with acquirer rules (see module docstring)")
