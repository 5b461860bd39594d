"""Argument types the commands share, so every everyday mistake is caught while parsing.

Each is an argparse `type=`: it returns the value unchanged (or normalised) or raises
argparse.ArgumentTypeError with a message naming the value, which the command table
(host_sim/commands.py) prints as one line before exiting with status 2."""

import argparse
import json
import os

SQLITE_MAGIC = b"SQLite format 3\x00"


def host_port(text):
    """HOST:PORT with a port in 0..65535 (0: any free port); an empty host means 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("%r is not HOST:PORT" % text)
    if int(port) > 65535:
        raise argparse.ArgumentTypeError("%r: port %s is not in 0..65535" % (text, port))
    return text


def split_host_port(text):
    """("host", port) of a value host_port accepted."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _sqlite_problem(path):
    """Why `path` is not an SQLite database file, or None (an empty file is a new database)."""
    if os.path.isdir(path):
        return "%s is a folder, not a database file" % path
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        return "cannot read %s: %s" % (path, e.strerror)
    if head and head != SQLITE_MAGIC:
        return "%s is not an SQLite database" % path
    return None


def _is_url(path):
    return path.startswith(("postgresql://", "postgres://"))


def database(path):
    """A database the command may create: its folder exists, and if the file exists it is SQLite; or a
    PostgreSQL URL (postgresql://USER@HOST:PORT/NAME), checked when the command connects."""
    if _is_url(path):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError("folder %s does not exist" % folder)
    if os.path.exists(path):
        problem = _sqlite_problem(path)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    return path


def existing_database(path):
    """A database that must already exist (a typo must not create an empty one), or a PostgreSQL URL."""
    if _is_url(path):
        return path
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError("no database at %s (the collector creates it)" % path)
    problem = _sqlite_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def json_file(path):
    """A readable file of JSON; returns the path (the command loads it)."""
    try:
        with open(path, encoding="utf-8") as f:
            json.load(f)
    except OSError as e:
        raise argparse.ArgumentTypeError("cannot read %s: %s" % (path, e.strerror)) from None
    except (ValueError, UnicodeError) as e:
        raise argparse.ArgumentTypeError("%s is not valid JSON: %s" % (path, e)) from None
    return path


def serial_port(text):
    """A serial device path that exists now (a pyserial URL such as loop:// is taken as is)."""
    if "://" not in text and not os.path.exists(text):
        raise argparse.ArgumentTypeError("no serial device at %s" % text)
    return text


def existing_file(path):
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError("no file at %s" % path)
    return path


def new_file(path):
    """A file the command creates if missing: its folder must exist, and it must not be a folder."""
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError("%s is a folder, not a file" % path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError("folder %s does not exist" % folder)
    return path


def existing_folder(path):
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError("no folder at %s" % path)
    return path


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (what is wrong, where to look), exit status 2."""

    def error(self, message):
        self.exit(2, "%s: %s (see --help)\n" % (self.prog, message))
