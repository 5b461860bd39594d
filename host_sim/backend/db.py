"""`python -m host_sim db migrate|create|start|stop`: the collector's database.

migrate   bring a database's schema to this version (an SQLite file is also migrated when opened; a
          PostgreSQL database only by this command, before collectors use it)
create    a new, migrated PostgreSQL database on a server (tests, benchmarks, a first set-up)
start     a private PostgreSQL server in a folder (host_sim/tools/pg_server.py); prints its URL
stop      stop it
Each prints one JSON line; a mistake is one line on stderr and exit 2."""

import json
import sys

from host_sim import arguments
from host_sim.backend import sqldb
from host_sim.backend.store import Store, StoreError
from host_sim.tools import pg_server


def migrate(target):
    """(version before, version after) of the database at `target`, migrated."""
    store = Store(target, check_schema=False)
    try:
        before, after = store.migrate()
        return getattr(store, "schema_from", before), after
    finally:
        store.close()


def create(server_url, name):
    """Create database `name` on the server of `server_url` (any database URL there) and migrate it;
    returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE %s" % psycopg.sql.Identifier(name).as_string(conn))
    base, _, _ = server_url.rpartition("/")
    target = base + "/" + name
    migrate(target)
    return target


def main(args):
    try:
        if args.action == "migrate":
            if not args.db:
                raise ValueError("migrate needs --db FILE|URL")
            before, after = migrate(args.db)
            out = {"db": args.db if not sqldb.is_url(args.db) else _hide_password(args.db), "from": before,
                   "to": after}
        elif args.action == "create":
            if not (args.db and sqldb.is_url(args.db) and args.name):
                raise ValueError("create needs --db URL (of the server) and --name NAME")
            out = {"url": _hide_password(create(args.db, args.name))}
        elif args.action == "start":
            out = {"url": pg_server.start(args.dir, args.port, durable=not args.no_fsync), "dir": args.dir}
        else:
            pg_server.stop(args.dir)
            out = {"stopped": args.dir}
    except (StoreError, ValueError, pg_server.ServerError, OSError) as e:
        print("db: %s" % e, file=sys.stderr)
        return 2
    except Exception as e:  # psycopg's errors (a database that exists, a server out of reach)
        if type(e).__module__.split(".")[0] not in ("psycopg", "sqlite3"):
            raise
        print("db: %s" % str(e).strip().splitlines()[0], file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


def _hide_password(url):
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user = head.partition("//")
    return "%s//%s:***@%s" % (scheme, user.split(":")[0], tail)


def add_arguments(parser):
    parser.add_argument("action", choices=("migrate", "create", "start", "stop"))
    parser.add_argument("--db", type=arguments.database, help="migrate: the SQLite file or postgresql:// URL; "
                                                              "create: a URL of the server")
    parser.add_argument("--name", help="create: the new database's name")
    parser.add_argument("--dir", default=".pg", help="start/stop: the private server's folder (default .pg)")
    parser.add_argument("--port", type=int, help="start: TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-fsync", action="store_true", help="start: fsync off (throwaway test data only)")
