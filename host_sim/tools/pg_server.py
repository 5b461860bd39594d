"""A private PostgreSQL server for development, tests and CI: initdb + pg_ctl in a folder, TCP on
127.0.0.1 only, trust authentication for one role, no Unix socket.

PostgreSQL refuses to run as root, so under root the server runs as an unprivileged user (`postgres`
when it exists, else `nobody`) through runuser, and the folder is handed to that user.  Binaries are
found on PATH, in $PG_BIN, or in /usr/lib/postgresql/<newest>/bin (Debian's `postgresql` package).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time

ROLE = "zhifu"
LOG = "server.log"


class ServerError(Exception):
    """No PostgreSQL binaries, or the server would not start."""


def binaries():
    """The folder of initdb and pg_ctl, or None."""
    folders = [os.environ.get("PG_BIN", "")]
    found = shutil.which("pg_ctl")
    if found:
        folders.append(os.path.dirname(found))
    folders += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    for folder in folders:
        if folder and os.path.isfile(os.path.join(folder, "initdb")) and os.path.isfile(os.path.join(folder, "pg_ctl")):
            return folder
    return None


def _major(path):
    try:
        return int(path.split("/")[-2])
    except ValueError:
        return 0


def _user():
    """(argv prefix, uid, gid) to run the server's programs as: nobody special unless we are root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
    raise ServerError("running as root and neither user postgres nor nobody exists")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url(port, database="postgres"):
    return "postgresql://%s@127.0.0.1:%d/%s" % (ROLE, port, database)


def start(folder, port=None, durable=True):
    """Start (creating it first if needed) the server whose data lives in `folder`; returns its URL.
    `durable` False turns fsync off: for throwaway test databases, never for measurements."""
    bin_dir = binaries()
    if bin_dir is None:
        raise ServerError("no PostgreSQL binaries (initdb, pg_ctl): install the `postgresql` package")
    prefix, uid, gid = _user()
    os.makedirs(folder, exist_ok=True)
    folder = os.path.abspath(folder)
    data = os.path.join(folder, "data")
    if uid is not None:
        os.chown(folder, uid, gid)
        os.chmod(folder, 0o700)
    if not os.path.isdir(data):
        _run(prefix + [os.path.join(bin_dir, "initdb"), "-D", data, "-A", "trust", "-U", ROLE, "-E", "UTF8",
                       "--no-instructions"])
    port = port or free_port()
    options = "-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" % port
    if not durable:
        options += " -c fsync=off -c full_page_writes=off"
    _run(prefix + [os.path.join(bin_dir, "pg_ctl"), "-D", data, "-o", options, "-l", os.path.join(folder, LOG),
                   "-w", "-t", "60", "start"])
    with open(os.path.join(folder, "port"), "w") as f:
        f.write(str(port))
    return url(port)


def stop(folder, mode="fast"):
    """Stop the server of `folder` (fast: open connections are cut, as in a restart)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise ServerError("no PostgreSQL binaries (initdb, pg_ctl)")
    prefix, _, _ = _user()
    _run(prefix + [os.path.join(bin_dir, "pg_ctl"), "-D", os.path.join(os.path.abspath(folder), "data"), "-m", mode,
                   "-w", "stop"])


def running_url(folder):
    """The URL of the server of `folder` if it runs, else None."""
    try:
        with open(os.path.join(folder, "port")) as f:
            port = int(f.read())
    except (OSError, ValueError):
        return None
    if not os.path.exists(os.path.join(folder, "data", "postmaster.pid")):
        return None
    return url(port)


def wait_ready(address, timeout=30.0):
    """Wait until `address` (a URL) accepts connections."""
    import psycopg

    end = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(address, connect_timeout=2).close()
            return
        except psycopg.Error as e:
            if time.monotonic() > end:
                raise ServerError("PostgreSQL at %s not ready: %s" % (address, e)) from None
            time.sleep(0.1)


def _run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, cwd="/")
    if done.returncode:
        raise ServerError("%s failed: %s" % (os.path.basename(argv[[a.startswith("/") for a in argv].index(True)]),
                                             (done.stderr or done.stdout).strip().splitlines()[-1:] or "?"))
