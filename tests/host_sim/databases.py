"""The collector's databases for tests: the `db` fixture runs a test body against an SQLite file and
against a fresh PostgreSQL database.

The PostgreSQL server is $ZHIFU_PG_URL (any database URL on a server where this role may create
databases), else a private one this session starts (host_sim/tools/pg_server.py, fsync off) and stops.
Without either the PostgreSQL cases skip with the reason, unless $ZHIFU_REQUIRE_PG is set (CI sets
it): then they fail, so CI can never pass without having run them."""

import itertools
import os
import shutil
import tempfile

import pytest

from host_sim.tools import pg_server as server_tool

URL_ENV = "ZHIFU_PG_URL"
REQUIRE_ENV = "ZHIFU_REQUIRE_PG"
TEMPLATE = "zf_template"
_names = itertools.count(1)


class PgServer:
    """A reachable server (url of its maintenance database), or why there is none (reason)."""

    def __init__(self, url=None, reason=None, folder=None):
        self.url, self.reason, self.folder = url, reason, folder

    def database_url(self, name):
        return self.url.rpartition("/")[0] + "/" + name

    def admin(self, sql):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server; see the module docstring."""
    url = os.environ.get(URL_ENV)
    folder = None
    try:
        if not url:
            folder = tempfile.mkdtemp(prefix="zhifu-pg-")
            url = server_tool.start(folder, durable=False)
        server_tool.wait_ready(url)
        server = PgServer(url, folder=folder)
        server.admin("DROP DATABASE IF EXISTS %s" % TEMPLATE)
        from host_sim.backend import db as db_command

        db_command.create(url, TEMPLATE)
    except (server_tool.ServerError, OSError, ImportError) as e:
        server = PgServer(reason="no PostgreSQL server: %s (set %s, or install postgresql)" % (e, URL_ENV))
    except Exception as e:  # psycopg's errors: a server given but unusable
        server = PgServer(reason="PostgreSQL at %s unusable: %s" % (url, str(e).strip().splitlines()[0]))
    yield server
    if folder is not None:
        try:
            server_tool.stop(folder, "immediate")
        except server_tool.ServerError:
            pass
        shutil.rmtree(folder, ignore_errors=True)


def require(server):
    """Skip (or, with $ZHIFU_REQUIRE_PG, fail) a test that needs `server` when there is none."""
    if server.url is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(server.reason + " (and %s is set)" % REQUIRE_ENV)
        pytest.skip(server.reason)


def fresh_database(server):
    """The URL of a new, migrated database on `server` (a copy of the migrated template)."""
    name = "zf_t%d_%d" % (os.getpid(), next(_names))
    server.admin("CREATE DATABASE %s TEMPLATE %s" % (name, TEMPLATE))
    return name, server.database_url(name)


@pytest.fixture
def pg_db(pg_server):
    """A fresh, migrated PostgreSQL database (URL); dropped afterwards."""
    require(pg_server)
    name, url = fresh_database(pg_server)
    yield url
    pg_server.admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """Where the collector keeps its data: an SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "c.db")
    return request.getfixturevalue("pg_db")
