"""Schema versions: an SQLite file is migrated when opened (older files included); a PostgreSQL database
only by `db migrate`, and a store refuses one that is behind with the command to run."""

import json
import sqlite3
import subprocess
import sys

import pytest

from host_sim.backend import store as store_mod
from host_sim.backend.store import Store, StoreError
from host_sim.tools import build
from tests.host_sim.databases import REQUIRE_ENV, PgServer, require


def test_an_sqlite_file_from_before_the_migrations_gets_its_columns_and_version(tmp_path):
    db = str(tmp_path / "old.db")
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE deny_list (token BLOB PRIMARY KEY, reason TEXT, version INTEGER NOT NULL);"
                      "INSERT INTO deny_list VALUES (x'01', 'stolen', 1);")
    con.close()
    store = Store(db)
    assert {"listed", "key_version", "origin"} <= store.columns("deny_list")
    assert store.schema_version() == store_mod.SCHEMA_VERSION and store.schema_from == 0
    assert store.denied() == [(b"\x01", None, "stolen", b"\x01")]  # the old entry stays listed
    store.close()
    assert Store(db).schema_from == store_mod.SCHEMA_VERSION  # nothing left to do the next time


def test_a_postgresql_database_behind_is_refused_until_db_migrate(pg_server):
    require(pg_server)
    pg_server.admin("DROP DATABASE IF EXISTS zf_unmigrated WITH (FORCE)")
    pg_server.admin("CREATE DATABASE zf_unmigrated")
    url = pg_server.database_url("zf_unmigrated")
    try:
        with pytest.raises(StoreError, match="db migrate"):
            Store(url)
        cmd = [sys.executable, "-m", "host_sim", "db", "migrate", "--db", url]
        done = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"db": url, "from": 0, "to": store_mod.SCHEMA_VERSION}
        store = Store(url)
        assert store.schema_version() == store_mod.SCHEMA_VERSION and store.has_table("records")
        store.close()
        again = subprocess.run(cmd, cwd=build.ROOT, capture_output=True, text=True, timeout=60)
        assert json.loads(again.stdout)["from"] == store_mod.SCHEMA_VERSION
    finally:
        pg_server.admin("DROP DATABASE IF EXISTS zf_unmigrated WITH (FORCE)")


def test_without_a_server_the_postgresql_cases_skip_and_in_ci_they_fail(monkeypatch):
    none = PgServer(reason="no PostgreSQL server: none here")
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="none here"):
        require(none)
    monkeypatch.setenv(REQUIRE_ENV, "1")  # what .ci/run sets
    with pytest.raises(pytest.fail.Exception, match="none here"):
        require(none)
