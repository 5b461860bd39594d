"""The collector's storage: every table the backend keeps, behind one small interface.

Callers (collector sessions, the acquirer, the report) use only the methods of `Store`, never SQL, so a
larger deployment can put PostgreSQL behind the same methods.  This one is SQLite in WAL mode: records
stored once per (terminal, seq), device keys, the acquirer's decisions and the deny list, what config
each terminal holds or refused, its newest STATUS, and merchants for the report.  Every commit is
durable (synchronous=FULL: the WAL is fsynced before COMMIT returns), and nothing is acknowledged to a
terminal before its commit.

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

from protocol import link, record

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
"""
STATUS_COLUMNS = link.STATUS_FIELDS + link.STATUS_EXT_FIELDS  # terminal_status has one column each
_TAP_KINDS_SQL = "(%s)" % ",".join(str(k) for k in record.TAP_KINDS)
ACCEPTED_TAP = "r.decision = %d AND r.kind IN %s" % (record.ACCEPTED, _TAP_KINDS_SQL)  # a transaction


class StoreError(Exception):
    """A group commit failed: nothing staged in it may be acknowledged."""


class Store:
    def __init__(self, path, crash_after_commits=None):
        self.crash_after_commits = crash_after_commits  # fault injection, see _committed()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        self._depth = 0  # nesting of transaction()/group() blocks; the outermost one commits
        self._records_staged = False  # store() ran in the open transaction
        self.commits = 0  # commits that stored records

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
        with self.transaction():
            self._records_staged = True
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO records (terminal, seq, time, kind, amount, currency, decision,"
                " reason, fare_id, token, atc, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self._rows(recs))
            return self.db.total_changes - before

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
        group's frames may be acknowledged."""
        with self.lock:
            if self._depth:
                raise RuntimeError("a group is the outermost transaction")
            try:
                with self.transaction():
                    yield self
            except (sqlite3.Error, StoreError) as e:
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

    def deny(self, token, reason):
        """Put a card token on the deny list as the next version; that version, or None if it is listed."""
        with self.transaction():
            if self.db.execute("SELECT 1 FROM deny_list WHERE token = ?", (token,)).fetchone() is not None:
                return None
            version = self.deny_list_version() + 1
            self.db.execute("INSERT INTO deny_list (token, reason, version) VALUES (?, ?, ?)", (token, reason, version))
            return version

    def deny_list_version(self):
        return self.query("SELECT COALESCE(MAX(version), 0) FROM deny_list")[0][0]

    def deny_list_since(self, version, limit=-1):
        """(token, version) added after `version`, oldest first: the delta a terminal at that version needs."""
        return [(bytes(t), v) for t, v in self.query(
            "SELECT token, version FROM deny_list WHERE version > ? ORDER BY version LIMIT ?", (version, limit))]

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
            self.db.execute("INSERT OR REPLACE INTO config_refused (terminal, kind, version, reason) "
                            "VALUES (?, ?, ?, ?)", (terminal, kind, version, reason))

    def config_refused(self, terminal, kind, version):
        return bool(self.query("SELECT 1 FROM config_refused WHERE terminal = ? AND kind = ? AND version = ?",
                               (terminal, kind, version)))

    # -- heartbeats and merchants -----------------------------------------------------------------

    def put_status(self, terminal, values):
        """The newest STATUS of a terminal (a dict with STATUS_COLUMNS; missing fields are None)."""
        row = [values.get(k) for k in STATUS_COLUMNS]
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO terminal_status (terminal, received, %s) VALUES "
                            "(?, julianday('now'), %s)" % (", ".join(STATUS_COLUMNS), ",".join("?" * len(row))),
                            [terminal] + row)

    def latest_status(self, terminal):
        """The newest STATUS a terminal sent, as a dict (None if it never sent one)."""
        rows = self.query("SELECT %s FROM terminal_status WHERE terminal = ?" % ", ".join(STATUS_COLUMNS),
                          (terminal,))
        return dict(zip(STATUS_COLUMNS, rows[0])) if rows else None

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

    # -- plain reads (tests, diagnosis) -------------------------------------------------------------

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def close(self):
        self.db.close()
