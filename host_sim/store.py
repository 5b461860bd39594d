"""The collector's storage: uploaded records in SQLite (WAL), stored once per (terminal, seq).

A small interface (register, device_key, hello, store, transaction, group, query) so a larger
deployment can put PostgreSQL behind it later.  Every commit is durable (synchronous=FULL: the WAL is
fsynced before COMMIT returns), and nothing is acknowledged to a terminal before its commit.

store() alone is one transaction.  Inside transaction() or group() it joins the open one, so a
frame's records and the acquirer's decisions on them commit together, and, in a group, many frames
of many links share one commit and one fsync (group commit, host_sim/ingest.py).  Whoever runs a
group must hold back the replies its frames produced until group() has returned.
"""

import contextlib
import logging
import os
import signal
import sqlite3
import threading

from protocol import record

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
"""


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

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def close(self):
        self.db.close()
