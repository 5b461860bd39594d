"""The collector's storage: every table the backend keeps, behind one small interface.

Callers (collector sessions, the acquirer, the report) use only the methods of `Store`, never SQL.  The
database is an SQLite file in WAL mode (the default) or, for several collectors sharing one database,
PostgreSQL (`--db postgresql://...`, host_sim/backend/sqldb.py translates the few statements that
differ; every query and table is written once, in SQLite's spelling).  It keeps records
stored once per (terminal, seq), device keys, the acquirer's decisions and the deny list, what config
each terminal holds or refused, its newest STATUS, and merchants for the report.  Every commit is
durable (SQLite: synchronous=FULL, the WAL is fsynced before COMMIT returns; PostgreSQL: its WAL is
flushed at COMMIT), and nothing is acknowledged to a terminal before its commit.

The schema: SCHEMA (every table, CREATE ... IF NOT EXISTS, applied at each migration, so a new table is
one edit there for both databases) and MIGRATIONS (numbered changes to existing tables).  An SQLite file
is migrated when it is opened; a PostgreSQL database by `python -m host_sim db migrate --db URL`, and
a store refuses to open one that is behind.

SQL both databases take (sqldb translates `?`, INSERT OR IGNORE, `IS ?`, column types, julianday('now')):
an upsert is INSERT ... ON CONFLICT(key) DO UPDATE (never INSERT OR REPLACE), with the table's own
columns qualified in its expressions (deny_list.origin); a subquery in FROM has an alias; no LIMIT -1
(_limit()); a number read and then written as the next one takes _serialise() first.

store() alone is one transaction.  Inside transaction() or group() it joins the open one, so in a
group many frames of many links share one commit and one fsync (group commit,
host_sim/backend/ingest.py).  Whoever runs a group must hold back the replies its frames produced
until group() has returned.
"""

import contextlib
import logging
import os
import signal
import sqlite3
import threading

from host_sim.backend import sqldb
from protocol import link, record, refusal

log = logging.getLogger("collector")

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    terminal TEXT PRIMARY KEY, runtime TEXT, last_hello REAL);
CREATE TABLE IF NOT EXISTS device_keys (
    terminal TEXT PRIMARY KEY, key BLOB NOT NULL, provisioned REAL DEFAULT (julianday('now')));
CREATE TABLE IF NOT EXISTS records (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER, kind INTEGER, amount INTEGER,
    currency INTEGER, decision INTEGER, reason INTEGER, fare_id INTEGER, token BLOB, atc BLOB,
    raw BLOB NOT NULL, received REAL DEFAULT (julianday('now')),
    PRIMARY KEY (terminal, seq));
CREATE TABLE IF NOT EXISTS authorisations (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, approved INTEGER NOT NULL, reason TEXT,
    decided REAL DEFAULT (julianday('now')), PRIMARY KEY (terminal, seq));
CREATE TABLE IF NOT EXISTS deny_list (
    token BLOB PRIMARY KEY, reason TEXT, version INTEGER NOT NULL, added REAL DEFAULT (julianday('now')));
CREATE INDEX IF NOT EXISTS deny_list_version ON deny_list (version);
CREATE TABLE IF NOT EXISTS deny_events (
    version INTEGER PRIMARY KEY, token BLOB NOT NULL, key_version INTEGER, action TEXT NOT NULL, reason TEXT,
    at REAL DEFAULT (julianday('now')));
CREATE TABLE IF NOT EXISTS token_keys (
    version INTEGER PRIMARY KEY, key BLOB NOT NULL, created REAL DEFAULT (julianday('now')));
CREATE TABLE IF NOT EXISTS terminal_status (
    terminal TEXT PRIMARY KEY, received REAL, depth INTEGER, health INTEGER, signal INTEGER,
    crc_errors INTEGER, mac_errors INTEGER, replays INTEGER, retransmits INTEGER, uptime_s INTEGER,
    journal_free INTEGER, journal_dropped INTEGER, reconnects INTEGER, deny_version INTEGER);
CREATE TABLE IF NOT EXISTS config_delivered (
    terminal TEXT NOT NULL, kind INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (terminal, kind));
CREATE TABLE IF NOT EXISTS config_refused (
    terminal TEXT NOT NULL, kind INTEGER NOT NULL, version INTEGER NOT NULL, reason TEXT,
    refused REAL DEFAULT (julianday('now')), PRIMARY KEY (terminal, kind, version));
CREATE TABLE IF NOT EXISTS terminal_merchants (terminal TEXT PRIMARY KEY, merchant TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terminal_groups (terminal TEXT PRIMARY KEY, grp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL, received REAL DEFAULT (julianday('now')),
    PRIMARY KEY (terminal, seq, raw));
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY, terminal TEXT NOT NULL, seq INTEGER, reason INTEGER NOT NULL, raw BLOB NOT NULL,
    detail TEXT, notified INTEGER NOT NULL DEFAULT 0, received REAL DEFAULT (julianday('now')));
CREATE INDEX IF NOT EXISTS refused_terminal ON refused (terminal, notified);
CREATE TABLE IF NOT EXISTS online_auth (
    terminal TEXT NOT NULL, request_id INTEGER NOT NULL, family TEXT, code_masked TEXT, code_token BLOB,
    amount INTEGER, currency INTEGER, result TEXT NOT NULL, reason TEXT, approval TEXT, reference TEXT,
    answered_ms INTEGER, requested REAL DEFAULT (julianday('now')), decided REAL,
    PRIMARY KEY (terminal, request_id));
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY, terminal TEXT NOT NULL, seq INTEGER NOT NULL, complaint TEXT, found TEXT,
    status TEXT NOT NULL, resolution TEXT, reason TEXT, refund_fen INTEGER,
    opened REAL DEFAULT (julianday('now')), resolved REAL);
CREATE TABLE IF NOT EXISTS case_steps (
    case_id INTEGER NOT NULL, step INTEGER NOT NULL, action TEXT NOT NULL, detail TEXT,
    at REAL DEFAULT (julianday('now')), PRIMARY KEY (case_id, step));
CREATE TABLE IF NOT EXISTS refunds (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, case_id INTEGER NOT NULL, amount INTEGER NOT NULL,
    result TEXT NOT NULL, reason TEXT, created REAL DEFAULT (julianday('now')), answered REAL,
    PRIMARY KEY (terminal, seq));
CREATE TABLE IF NOT EXISTS terminal_clock (
    terminal TEXT PRIMARY KEY, drift_ms INTEGER, bound_ms INTEGER, received REAL);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""
REFUSED_FRAME = 0  # `refused.reason` of a whole frame body kept aside (it did not decode: ERROR 3)
REFUSED_NAMES = dict(refusal.NAMES)
REFUSED_NAMES[REFUSED_FRAME] = "frame did not decode"
STATUS_EXT2_FIELDS = ("quarantined", "damaged")  # the 34-byte STATUS (SPEC "STATUS fields")
STATUS_EXT3_FIELDS = ("log_lines", "log_alerts")  # the 38-byte STATUS
STATUS_COLUMNS = link.STATUS_FIELDS + link.STATUS_EXT_FIELDS + STATUS_EXT2_FIELDS + STATUS_EXT3_FIELDS
_TAP_KINDS_SQL = "(%s)" % ",".join(str(k) for k in record.TAP_KINDS)
CASE_COLUMNS = ("id", "terminal", "seq", "complaint", "found", "status", "resolution", "reason", "refund_fen",
                "opened", "resolved")
ACCEPTED_TAP = "r.decision = %d AND r.kind IN %s" % (record.ACCEPTED, _TAP_KINDS_SQL)  # a transaction


class StoreError(Exception):
    """A group commit failed: nothing staged in it may be acknowledged."""


class StoreUnavailable(StoreError):
    """A group could not even begin (the database is out of reach or locked): nothing was staged, so
    its frames can wait and be offered to the next group."""


def _columns_before_versions(store):
    """Columns added to tables of SQLite files made before these migrations: deny_list's listed flag,
    key version and origin; STATUS fields quarantined and damaged."""
    have = store.columns("deny_list")
    for column, kind in (("listed", "INTEGER NOT NULL DEFAULT 1"), ("key_version", "INTEGER"), ("origin", "BLOB")):
        if column not in have:
            store.db.execute("ALTER TABLE deny_list ADD COLUMN %s %s" % (column, kind))
    have = store.columns("terminal_status")
    for column in STATUS_EXT2_FIELDS:
        if column not in have:
            store.db.execute("ALTER TABLE terminal_status ADD COLUMN %s INTEGER" % column)


def _status_log_counts(store):
    """STATUS fields log_lines and log_alerts (the 38-byte form: the terminal's log on /flash)."""
    have = store.columns("terminal_status")
    for column in STATUS_EXT3_FIELDS:
        if column not in have:
            store.db.execute("ALTER TABLE terminal_status ADD COLUMN %s INTEGER" % column)


# (version, function(store) run inside the migration's transaction), in order; append, never edit.
MIGRATIONS = (
    (1, _columns_before_versions),
    (2, _status_log_counts),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
MIGRATE_LOCK = 0x7A46_0001  # PostgreSQL advisory lock: one migration at a time
LEAD_LOCKS = {"authorisations": 0x7A46_0002}  # work only one collector of several does at a time


class Store:
    def __init__(self, path, crash_after_commits=None, check_schema=True):
        """`path`: an SQLite file (created and migrated here) or a PostgreSQL URL (migrated by `db migrate`;
        check_schema False opens one that is behind, for that command)."""
        self.crash_after_commits = crash_after_commits  # fault injection, see _committed()
        self.postgres = sqldb.is_url(path)
        self.lock = threading.RLock()
        self._depth = 0  # nesting of transaction()/group() blocks; the outermost one commits
        self._records_staged = False  # store() ran in the open transaction
        self.commits = 0  # commits that stored records
        try:
            self.db = sqldb.connect(path)
        except sqlite3.Error as e:
            raise StoreError("cannot open the database: %s" % e) from None
        if not self.postgres:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.schema_from = self.migrate()[0]  # the version the file had
        elif check_schema and self.schema_version() < SCHEMA_VERSION:
            have = self.schema_version()
            self.db.close()
            raise StoreError("the database is at schema version %d, this collector needs %d: run "
                             "`python -m host_sim db migrate --db URL`" % (have, SCHEMA_VERSION))

    def migrate(self):
        """Bring the schema up to date: SCHEMA's tables, then every migration above the stored version,
        in one transaction.  Returns (version before, version after)."""
        with self.transaction():
            if self.postgres:
                self.db.execute("SELECT pg_advisory_xact_lock(%d)" % MIGRATE_LOCK)
                self.db.execute(sqldb.JULIANDAY)
            for statement in sqldb.split_script(SCHEMA):
                self.db.execute(statement)
            before = self.schema_version()
            for version, step in MIGRATIONS:
                if version > before:
                    step(self)
            self.db.execute("DELETE FROM schema_version")
            self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        return before, SCHEMA_VERSION

    def schema_version(self):
        """The version of the last migration applied (0: none, or no schema yet)."""
        if not self.has_table("schema_version"):
            return 0
        return self.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]

    def has_table(self, name):
        if self.postgres:
            sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
        else:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(self.query(sql, (name,)))

    def columns(self, table):
        """The column names of `table`."""
        if self.postgres:
            return {r[0] for r in self.query("SELECT column_name FROM information_schema.columns WHERE "
                                             "table_schema = current_schema() AND table_name = ?", (table,))}
        return {row[1] for row in self.query("PRAGMA table_info(%s)" % table)}

    def _serialise(self, table):
        """Inside a transaction: hold off other writers of `table` until it ends (numbers such as the deny
        list's version are read, then the next one written).  SQLite's BEGIN IMMEDIATE already does."""
        if self.postgres:
            self.db.execute("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE" % table)

    def lead(self, work):
        """True if this process is the one of several collectors on the database that does `work`
        (LEAD_LOCKS); it stays so until it closes or loses its connection.  SQLite: always."""
        if not self.postgres:
            return True
        try:
            return bool(self.query("SELECT pg_try_advisory_lock(%d)" % LEAD_LOCKS[work])[0][0])
        except sqlite3.Error:
            return False

    def hello(self, terminal, runtime):
        with self.lock:
            self.db.execute("INSERT INTO terminals VALUES (?, ?, julianday('now')) ON CONFLICT(terminal) "
                            "DO UPDATE SET runtime=excluded.runtime, last_hello=excluded.last_hello",
                            (terminal, runtime))

    def register(self, terminal, key):
        """Provision (or re-key) a terminal: only registered terminals may upload."""
        with self.lock:
            self.db.execute("INSERT INTO device_keys (terminal, key) VALUES (?, ?) ON CONFLICT(terminal) "
                            "DO UPDATE SET key=excluded.key, provisioned=julianday('now')", (terminal, bytes(key)))

    def device_key(self, terminal):
        with self.lock:
            row = self.db.execute("SELECT key FROM device_keys WHERE terminal = ?", (terminal,)).fetchone()
        return bytes(row[0]) if row else None

    @staticmethod
    def _rows(recs):
        for rec in recs:
            yield (rec["terminal"].hex(), rec["seq"], rec["time"], rec["kind"], rec["amount"], rec["currency"],
                   rec["decision"], rec["reason"], rec["fare_id"], rec["token"], rec["ext"].get(record.EXT_ATC),
                   rec["raw"])

    def store(self, recs):
        """Insert decoded records; returns how many were new.  Committed when the outermost
        transaction() or group() around it ends, or at once when there is none."""
        return self.store_verdicts(recs)[0]

    def store_verdicts(self, recs):
        """store(), and the sequence numbers of the records kept aside as conflicts: (new, [seq])."""
        with self.transaction():
            self._records_staged = True
            before = self.db.total_changes
            rows = list(self._rows(recs))
            self.db.executemany(
                "INSERT OR IGNORE INTO records (terminal, seq, time, kind, amount, currency, decision,"
                " reason, fare_id, token, atc, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            new = self.db.total_changes - before
            conflicts = []
            if new < len(rows):  # some were held already: the same bytes (a resend) or a conflict
                conflicts = self._keep_conflicts(rows)
            return new, conflicts

    def _keep_conflicts(self, rows):
        """Keep aside every record that differs from the one stored under its (terminal, seq): it is
        no resend but another tap under a reused number, never to be merged into the stored one.
        Returns their sequence numbers (a conflict received again is named again)."""
        out = []
        for row in rows:
            terminal, seq, raw = row[0], row[1], row[-1]
            held = self.db.execute("SELECT raw FROM records WHERE terminal = ? AND seq = ?", (terminal, seq)).fetchone()
            if held is not None and bytes(held[0]) != bytes(raw):
                out.append(seq)
                cur = self.db.execute("INSERT OR IGNORE INTO conflicts (terminal, seq, raw) VALUES (?, ?, ?)",
                                      (terminal, seq, raw))
                if cur.rowcount:
                    log.warning("terminal %s record #%d differs from the stored one: kept aside as a conflict",
                                terminal, seq)
        return out

    def refuse(self, terminal, seq, reason, raw, detail=""):
        """Keep aside a record (or, reason REFUSED_FRAME, a frame body) the host did not store, with its
        raw bytes and link.REFUSED_* reason; `seq` None when it carries none.  A conflict goes to both
        the conflicts table (conflicts()) and here (the verdict to send).  Joins the open transaction."""
        with self.transaction():
            held = self.db.execute("SELECT id FROM refused WHERE terminal = ? AND seq IS ? AND reason = ? AND raw = ?",
                                   (terminal, seq, reason, bytes(raw))).fetchone()
            if held is not None:  # received again (our ACK was lost): name it again, keep it once
                self.db.execute("UPDATE refused SET notified = 0 WHERE id = ?", (held[0],))
                return
            self.db.execute("INSERT INTO refused (terminal, seq, reason, raw, detail) VALUES (?, ?, ?, ?, ?)",
                            (terminal, seq, reason, bytes(raw), detail))

    def refused(self, terminal=None):
        """(terminal, seq, reason, raw, detail, notified) of everything kept aside as refused."""
        sql = "SELECT terminal, seq, reason, raw, detail, notified FROM refused"
        rows = self.query(sql + (" WHERE terminal = ?" if terminal else "") + " ORDER BY id",
                          (terminal,) if terminal else ())
        return [(t, s, r, bytes(raw), d, bool(n)) for t, s, r, raw, d, n in rows]

    def unnotified(self, terminal):
        """(seq, reason) of the refused records of a terminal not yet named in a delivered REFUSED."""
        return [(s, r) for s, r in self.query(
            "SELECT seq, reason FROM refused WHERE terminal = ? AND notified = 0 AND seq IS NOT NULL"
            " AND reason != ? ORDER BY id", (terminal, REFUSED_FRAME))]

    def notified(self, terminal, seqs):
        """The terminal acknowledged a REFUSED naming these sequence numbers."""
        with self.transaction():
            self.db.executemany("UPDATE refused SET notified = 1 WHERE terminal = ? AND seq = ?",
                                [(terminal, s) for s in seqs])

    def seq_high(self, terminal):
        """The highest record sequence number held for a terminal: stored, conflicting or refused (0 if
        none).  Sent in the host's AUTH, so the terminal never issues a number at or below it."""
        row = self.query("SELECT max(m) FROM (SELECT max(seq) AS m FROM records WHERE terminal = ?"
                         " UNION ALL SELECT max(seq) FROM conflicts WHERE terminal = ?"
                         " UNION ALL SELECT max(seq) FROM refused WHERE terminal = ? AND reason != ?) AS held",
                         (terminal, terminal, terminal, refusal.WRONG_TERMINAL))
        return min(row[0][0] or 0, 0xFFFFFFFF) if row else 0

    def conflicts(self, terminal=None):
        """(terminal, seq, raw) of the records kept aside because another one holds their number."""
        with self.lock:
            sql = "SELECT terminal, seq, raw FROM conflicts" + (" WHERE terminal = ?" if terminal else "")
            return [(t, s, bytes(r)) for t, s, r in self.db.execute(sql + " ORDER BY terminal, seq",
                                                                     (terminal,) if terminal else ())]

    @contextlib.contextmanager
    def transaction(self):
        """One atomic unit of work.  Nested in another one (or a group) it is a savepoint of the open
        transaction: committed with it, or rolled back alone if its own block fails."""
        with self.lock:
            if self._depth:
                if not self.db.in_transaction:  # SQLite rolled the outer one back on an earlier error
                    raise sqlite3.OperationalError("the enclosing transaction was rolled back")
                name = "nested%d" % self._depth  # a savepoint: a failed inner unit leaves nothing behind
                self.db.execute("SAVEPOINT " + name)
                self._depth += 1
                try:
                    yield self
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK TO " + name)
                        self.db.execute("RELEASE " + name)
                    raise
                else:
                    self.db.execute("RELEASE " + name)
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self._records_staged = False
            try:
                yield self
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            if self._records_staged:
                self._committed()

    @contextlib.contextmanager
    def group(self):
        """One transaction and one commit for every store() until the block ends.  Raises StoreError
        (after rolling back) if the commit, or anything staged in the group, failed: then none of the
        group's frames may be acknowledged; StoreUnavailable if it could not begin (nothing ran)."""
        with self.lock:
            if self._depth:
                raise RuntimeError("a group is the outermost transaction")
            began = False
            try:
                with self.transaction():
                    began = True
                    yield self
            except (sqlite3.Error, StoreError) as e:
                if not began:
                    raise StoreUnavailable("no group could begin: %s" % e) from e
                raise StoreError("group commit failed: %s" % e) from e

    def _committed(self):
        """Count a commit of records.  With `crash_after_commits` set, the process kills itself (SIGKILL) right
        after that commit and before any acknowledgement of it is sent: the worst moment for a
        collector to die, used by tests to prove terminals re-send and nothing is stored twice."""
        self.commits += 1
        if self.crash_after_commits is not None and self.commits >= self.crash_after_commits:
            log.warning("fault injection: crashing after commit %d", self.commits)
            os.kill(os.getpid(), signal.SIGKILL)

    # -- the acquirer: deferred authorisation and the deny list ----------------------------------

    def pending_records(self):
        """(terminal, seq, raw record) of every accepted tap without a decision, in order: a declined tap
        (or a record that is no tap) is no transaction and is never authorised."""
        return [(t, seq, bytes(raw)) for t, seq, raw in self.query(
            "SELECT r.terminal, r.seq, r.raw FROM records r LEFT JOIN authorisations a "
            "ON a.terminal = r.terminal AND a.seq = r.seq WHERE a.seq IS NULL AND " + ACCEPTED_TAP +
            " ORDER BY r.terminal, r.seq")]

    def record(self, terminal, seq):
        """The raw record (terminal, seq), or None when it is not stored (yet)."""
        rows = self.query("SELECT raw FROM records WHERE terminal = ? AND seq = ?", (terminal, seq))
        return bytes(rows[0][0]) if rows else None

    def decide(self, terminal, seq, approved, reason):
        """Record the acquirer's decision on one record; False if it was decided before (kept as it was)."""
        with self.lock:
            return self.db.execute("INSERT OR IGNORE INTO authorisations (terminal, seq, approved, reason) "
                                   "VALUES (?, ?, ?, ?)", (terminal, seq, int(approved), reason)).rowcount == 1

    def deny(self, token, reason, key_version=None, origin=None):
        """Put a card token (made under token key `key_version`) on the deny list as the next version;
        that version, or None if it is listed.  `origin`: the token the card's stored records carry, when
        this one was recomputed under a newer key (default: `token` itself).  Every change is also kept
        in deny_events."""
        return self._deny_change(bytes(token), True, reason, key_version, bytes(origin or token))

    def allow(self, token, reason):
        """Take a token off the deny list (its issuer re-enabled the card) as the next version; that
        version, or None if it is not listed."""
        return self._deny_change(bytes(token), False, reason, None, None)

    def _deny_change(self, token, listed, reason, key_version, origin):
        with self.transaction():
            self._serialise("deny_list")
            row = self.db.execute("SELECT listed, key_version FROM deny_list WHERE token = ?", (token,)).fetchone()
            if (row is not None and bool(row[0]) == listed) or (row is None and not listed):
                return None
            if key_version is None and row is not None:
                key_version = row[1]
            version = self.deny_list_version() + 1
            self.db.execute("INSERT INTO deny_list (token, reason, version, listed, key_version, origin) "
                            "VALUES (?,?,?,?,?,?) ON CONFLICT(token) DO UPDATE SET reason=excluded.reason, "
                            "version=excluded.version, listed=excluded.listed, key_version=excluded.key_version, "
                            "origin=COALESCE(excluded.origin, deny_list.origin)",
                            (token, reason, version, int(listed), key_version, origin))
            self.db.execute("INSERT INTO deny_events (version, token, key_version, action, reason) VALUES (?,?,?,?,?)",
                            (version, token, key_version, "add" if listed else "remove", reason))
            return version

    def deny_list_version(self):
        return self.query("SELECT COALESCE(MAX(version), 0) FROM deny_list")[0][0]

    def deny_list_since(self, version, limit=-1):
        """(token, version) listed by a change after `version`, oldest first."""
        return [(t, v) for t, v, listed in self.deny_changes_since(version, limit) if listed]

    def deny_changes_since(self, version, limit=-1):
        """(token, version, listed) of every token whose newest change is after `version`, oldest first:
        the delta a terminal at that version needs (listed: add it; not listed: remove it)."""
        return [(bytes(t), v, bool(listed)) for t, v, listed in self.query(
            "SELECT token, version, listed FROM deny_list WHERE version > ? ORDER BY version" + _limit(limit),
            (version,))]

    def denied(self):
        """(token, key version, reason, origin token) of every listed token."""
        return [(bytes(t), kv, r, bytes(o or t)) for t, kv, r, o in self.query(
            "SELECT token, key_version, reason, origin FROM deny_list WHERE listed = 1 ORDER BY version")]

    def deny_events(self, limit=-1):
        """(version, token, key version, "add" or "remove", reason, julian day) of deny-list changes, newest first."""
        return [(v, bytes(t), kv, a, r, at) for v, t, kv, a, r, at in self.query(
            "SELECT version, token, key_version, action, reason, at FROM deny_events ORDER BY version DESC" +
            _limit(limit))]

    # -- the fleet token key (protocol/tokens.py) -------------------------------------------------

    def token_key(self, first=None):
        """(version, key) of the current fleet token key; the first one (version 1) is made on first use,
        from `first` when given (a simulated fleet's key drawn from its seed), else at random."""
        with self.transaction():
            row = self.db.execute("SELECT version, key FROM token_keys ORDER BY version DESC LIMIT 1").fetchone()
            if row is None:  # the first: made once, however many collectors ask at once
                self._serialise("token_keys")
                row = self.db.execute("SELECT version, key FROM token_keys ORDER BY version DESC LIMIT 1").fetchone()
            if row is None:
                row = (1, first or os.urandom(32))
                self.db.execute("INSERT INTO token_keys (version, key) VALUES (?, ?)", row)
            return row[0], bytes(row[1])

    def rotate_token_key(self):
        """A new current token key, one version up; returns (version, key)."""
        with self.transaction():
            self._serialise("token_keys")
            version = self.token_key()[0] + 1
            key = os.urandom(32)
            self.db.execute("INSERT INTO token_keys (version, key) VALUES (?, ?)", (version, key))
            return version, key

    def token_keys(self):
        """{version: key} of every token key made."""
        return {v: bytes(k) for v, k in self.query("SELECT version, key FROM token_keys")}

    def token_key_holders(self, kind):
        """{key version: terminals that confirmed holding it} (config kind `kind`, the token key)."""
        return dict(self.query("SELECT version, count(*) FROM config_delivered WHERE kind = ? GROUP BY version",
                               (kind,)))

    def records_with_token(self, token):
        """(terminal, raw record) of every stored record carrying `token`."""
        return [(t, bytes(raw)) for t, raw in self.query("SELECT terminal, raw FROM records WHERE token = ?",
                                                          (bytes(token),))]

    # -- config bundles per terminal ----------------------------------------------------------------

    def delivered_version(self, terminal, kind):
        """The version of config `kind` the terminal confirmed it holds (0: none)."""
        rows = self.query("SELECT version FROM config_delivered WHERE terminal = ? AND kind = ?", (terminal, kind))
        return rows[0][0] if rows else 0

    def set_delivered(self, terminal, kind, version):
        with self.lock:
            self.db.execute("INSERT INTO config_delivered VALUES (?, ?, ?) ON CONFLICT(terminal, kind) "
                            "DO UPDATE SET version=excluded.version", (terminal, kind, version))

    def refuse_config(self, terminal, kind, version, reason):
        with self.lock:
            self.db.execute("INSERT INTO config_refused (terminal, kind, version, reason) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT(terminal, kind, version) DO UPDATE SET reason=excluded.reason, "
                            "refused=julianday('now')", (terminal, kind, version, reason))

    def config_refused(self, terminal, kind, version):
        return bool(self.query("SELECT 1 FROM config_refused WHERE terminal = ? AND kind = ? AND version = ?",
                               (terminal, kind, version)))

    # -- heartbeats and merchants -----------------------------------------------------------------

    def put_status(self, terminal, values):
        """The newest STATUS of a terminal (a dict with STATUS_COLUMNS; missing fields are None)."""
        row = [values.get(k) for k in STATUS_COLUMNS]
        with self.lock:
            self.db.execute("INSERT INTO terminal_status (terminal, received, %s) VALUES (?, julianday('now'), %s) "
                            "ON CONFLICT(terminal) DO UPDATE SET received=excluded.received, %s"
                            % (", ".join(STATUS_COLUMNS), ",".join("?" * len(row)),
                               ", ".join("%s=excluded.%s" % (c, c) for c in STATUS_COLUMNS)), [terminal] + row)

    def latest_status(self, terminal):
        """The newest STATUS a terminal sent, as a dict (None if it never sent one)."""
        rows = self.query("SELECT %s FROM terminal_status WHERE terminal = ?" % ", ".join(STATUS_COLUMNS),
                          (terminal,))
        return dict(zip(STATUS_COLUMNS, rows[0])) if rows else None

    def assign_group(self, terminal, group):
        """The terminal group (route, school, scenic area) a terminal's profile bundles are addressed to."""
        with self.lock:
            self.db.execute("INSERT INTO terminal_groups VALUES (?, ?) ON CONFLICT(terminal) DO UPDATE SET "
                            "grp = excluded.grp", (terminal, group))

    def terminal_group(self, terminal):
        """The terminal's group (assign_group), or None."""
        with self.lock:
            row = self.db.execute("SELECT grp FROM terminal_groups WHERE terminal = ?", (terminal,)).fetchone()
        return row[0] if row else None

    def assign_merchant(self, terminal, merchant):
        with self.lock:
            self.db.execute("INSERT INTO terminal_merchants VALUES (?, ?) ON CONFLICT(terminal) DO UPDATE SET "
                            "merchant = excluded.merchant", (terminal, merchant))

    def settlement_rows(self):
        """(terminal, raw record, approved 1/0/None, merchant) of every accepted tap, for the report."""
        return [(t, bytes(raw), approved, merchant) for t, raw, approved, merchant in self.query(
            "SELECT r.terminal, r.raw, a.approved, COALESCE(m.merchant, 'unassigned') FROM records r "
            "LEFT JOIN authorisations a ON a.terminal = r.terminal AND a.seq = r.seq "
            "LEFT JOIN terminal_merchants m ON m.terminal = r.terminal WHERE " + ACCEPTED_TAP +
            " ORDER BY r.terminal, r.seq")]

    def declined_rows(self):
        """(terminal, raw record, merchant) of every declined tap the terminals recorded, for the report."""
        return [(t, bytes(raw), merchant) for t, raw, merchant in self.query(
            "SELECT r.terminal, r.raw, COALESCE(m.merchant, 'unassigned') FROM records r "
            "LEFT JOIN terminal_merchants m ON m.terminal = r.terminal WHERE r.decision = %d AND r.kind IN %s "
            "ORDER BY r.terminal, r.seq" % (record.DECLINED, _TAP_KINDS_SQL))]

    # -- complaints: cases, their steps and refunds (host_sim/backend/cases.py) ----------------------

    def open_case(self, terminal, seq, complaint, found):
        """A new open case about transaction (terminal, seq); `found` is JSON text.  Returns its id."""
        with self.transaction():
            cur = self.db.execute("INSERT INTO cases (terminal, seq, complaint, found, status) VALUES (?,?,?,?,?)"
                                  " RETURNING id", (terminal, seq, complaint, found, "open"))
            case_id = cur.fetchone()[0]
            self.case_step(case_id, "opened", complaint)
            return case_id

    def case_step(self, case_id, action, detail=None):
        """Append a timestamped step to a case's history."""
        with self.transaction():
            self._serialise("case_steps")
            step = self.db.execute("SELECT COALESCE(MAX(step), 0) + 1 FROM case_steps WHERE case_id = ?",
                                   (case_id,)).fetchone()[0]
            self.db.execute("INSERT INTO case_steps (case_id, step, action, detail) VALUES (?,?,?,?)",
                            (case_id, step, action, detail))

    def resolve_case(self, case_id, resolution, reason, refund_fen=None):
        """Close an open case; False if it was not open (kept as it was)."""
        with self.transaction():
            done = self.db.execute("UPDATE cases SET status = 'resolved', resolution = ?, reason = ?, refund_fen = ?,"
                                   " resolved = julianday('now') WHERE id = ? AND status = 'open'",
                                   (resolution, reason, refund_fen, case_id)).rowcount == 1
            if done:
                self.case_step(case_id, "resolved: " + resolution, reason)
            return done

    def cases(self, case_id=None):
        """Every case (or the one `case_id`) as dicts with CASE_COLUMNS (times as julian days), by id."""
        sql = "SELECT %s FROM cases" % ", ".join(CASE_COLUMNS)
        rows = self.query(sql + (" WHERE id = ?" if case_id is not None else "") + " ORDER BY id",
                          (case_id,) if case_id is not None else ())
        return [dict(zip(CASE_COLUMNS, r)) for r in rows]

    def case_steps(self, case_id):
        """(step, action, detail, julian day) of a case, in order."""
        return [tuple(r) for r in self.query("SELECT step, action, detail, at FROM case_steps WHERE case_id = ? "
                                             "ORDER BY step", (case_id,))]

    def add_refund(self, terminal, seq, case_id, amount):
        """Claim the refund of transaction (terminal, seq), result 'pending'; False if it has one already."""
        with self.lock:
            return self.db.execute("INSERT OR IGNORE INTO refunds (terminal, seq, case_id, amount, result) "
                                   "VALUES (?,?,?,?,'pending')", (terminal, seq, case_id, amount)).rowcount == 1

    def refund_answered(self, terminal, seq, result, reason=None):
        """The acquirer's answer to a refund: result 'approved' (it settles) or 'declined'."""
        with self.lock:
            self.db.execute("UPDATE refunds SET result = ?, reason = ?, answered = julianday('now') "
                            "WHERE terminal = ? AND seq = ?", (result, reason, terminal, seq))

    def drop_refund(self, terminal, seq):
        """Forget a refund the acquirer never answered (it was not made)."""
        with self.lock:
            self.db.execute("DELETE FROM refunds WHERE terminal = ? AND seq = ? AND result = 'pending'",
                            (terminal, seq))

    def refund(self, terminal, seq):
        """(case id, amount, result, reason) of the transaction's refund, or None."""
        rows = self.query("SELECT case_id, amount, result, reason FROM refunds WHERE terminal = ? AND seq = ?",
                          (terminal, seq))
        return tuple(rows[0]) if rows else None

    def refunded(self):
        """{(terminal, seq): amount} of every refund the acquirer approved (settlement deducts them)."""
        return {(t, s): a for t, s, a in self.query("SELECT terminal, seq, amount FROM refunds "
                                                    "WHERE result = 'approved'")}

    def authorisation(self, terminal, seq):
        """(approved 1/0, reason, julian day) of the acquirer's decision on a record, or None (pending)."""
        rows = self.query("SELECT approved, reason, decided FROM authorisations WHERE terminal = ? AND seq = ?",
                          (terminal, seq))
        return tuple(rows[0]) if rows else None

    def taps_of_token(self, token, first, last):
        """(terminal, seq, raw) of the accepted taps carrying `token` with terminal time in [first, last]."""
        return [(t, s, bytes(raw)) for t, s, raw in self.query(
            "SELECT r.terminal, r.seq, r.raw FROM records r WHERE r.token = ? AND r.time >= ? AND r.time <= ? AND "
            + ACCEPTED_TAP + " ORDER BY r.time, r.terminal, r.seq", (bytes(token), first, last))]

    # -- monitoring (host_sim/backend/monitor.py) ---------------------------------------------------

    def put_clock(self, terminal, drift_ms, bound_ms):
        """The terminal's clock against ours at its newest TIME request (terminal minus host, ms)."""
        with self.lock:
            self.db.execute("INSERT INTO terminal_clock VALUES (?, ?, ?, julianday('now')) ON CONFLICT(terminal) "
                            "DO UPDATE SET drift_ms=excluded.drift_ms, bound_ms=excluded.bound_ms, "
                            "received=excluded.received", (terminal, drift_ms, bound_ms))

    def health_rows(self):
        """Per terminal known to the collector: a dict of its newest STATUS (STATUS_COLUMNS), `status_at` and
        `hello_at` (julian days), `drift_ms`, `bound_ms`, `clock_at`; missing parts are None."""
        names = ("terminal", "hello_at", "status_at", "drift_ms", "bound_ms", "clock_at") + STATUS_COLUMNS
        rows = self.query(
            "SELECT k.terminal, h.last_hello, s.received, c.drift_ms, c.bound_ms, c.received, %s FROM "
            "(SELECT terminal FROM terminals UNION SELECT terminal FROM terminal_status UNION "
            "SELECT terminal FROM device_keys) k LEFT JOIN terminals h ON h.terminal = k.terminal "
            "LEFT JOIN terminal_status s ON s.terminal = k.terminal LEFT JOIN terminal_clock c ON "
            "c.terminal = k.terminal ORDER BY k.terminal" % ", ".join("s." + c for c in STATUS_COLUMNS))
        return [dict(zip(names, r)) for r in rows]

    def tap_times(self, since):
        """(token, terminal, time) of every accepted tap with a token and terminal time >= since, by token
        and time (velocity checks)."""
        return [(bytes(t), term, when) for t, term, when in self.query(
            "SELECT r.token, r.terminal, r.time FROM records r WHERE r.time >= ? AND r.token IS NOT NULL AND "
            + ACCEPTED_TAP + " ORDER BY r.token, r.time", (since,))]

    def now(self):
        """The database's clock as a julian day (what its timestamps are written in)."""
        return self.query("SELECT julianday('now')")[0][0]

    # -- plain reads (tests, diagnosis) -------------------------------------------------------------

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def close(self):
        self.db.close()


def _limit(limit):
    """The LIMIT clause of `limit` rows; none for a negative one (both databases)."""
    return " LIMIT %d" % limit if limit >= 0 else ""
