"""`python -m host_sim collector`: the backend process.  It serves terminals over TCP
(host_sim/backend/tcp_server.py) and serial ports (serial_server.py), each link a host Session
(host_session.py) over one Store (store.py), with the Backoffice's policy (backoffice.py): deferred
authorisation (a worker thread asking the acquirer, over ISO 8583 with --acquirer, else in process),
deny-list deltas, fleet bundles, heartbeats."""

import argparse
import asyncio
import logging
import signal
import sys
import threading

from host_sim import arguments
from host_sim.backend import acquirer, acquirer_link, log_limit, sealing, tcp_server
from host_sim.backend.backoffice import Backoffice
from host_sim.backend.serial_server import serve_serial
from host_sim.backend.store import Store, StoreError

log = logging.getLogger("collector")


def main(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.acquirer and args.acquirer_rules:
        print("collector: --acquirer-rules belong to the acquirer host; give --acquirer or --acquirer-rules",
              file=sys.stderr)
        return 2
    if not args.listen and not args.serial:
        print("collector: nothing to serve: give --listen HOST:PORT and/or --serial PORT", file=sys.stderr)
        return 2
    try:
        opener = sealing.opener(args.seal_key)  # a bad key file stops here, not at the first record
        link = acquirer_link.TcpLink(args.acquirer) if args.acquirer else \
            acquirer.Acquirer(acquirer.load_rules(args.acquirer_rules) if args.acquirer_rules else None)
    except (OSError, ValueError) as e:
        print("collector: %s" % e, file=sys.stderr)
        return 2
    _file_limit(args.max_connections + 256)
    try:
        store = Store(args.db, args.crash_after_commits)
    except StoreError as e:
        print("collector: %s" % e, file=sys.stderr)
        return 2
    office = Backoffice(store, link, args.bundles, opener)
    recorder = None
    if args.record:
        from host_sim.sim.capture import Recorder

        try:
            recorder = Recorder(args.record)
        except OSError as e:
            print("collector: cannot record into %s: %s" % (args.record, e.strerror or e), file=sys.stderr)
            store.close()
            return 2
    stop = threading.Event()
    authorisations = threading.Thread(target=office.run_authorisations, args=(stop,), daemon=True)
    authorisations.start()
    threads = []
    for port in args.serial or ():
        t = threading.Thread(target=serve_serial, args=(port, store, stop, None, office),
                             kwargs={"recorder": recorder}, daemon=True)
        t.start()
        threads.append(t)

    async def run():
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a service manager's stop: finish and close cleanly
            loop.add_signal_handler(sig, done.set)
        if not args.listen:
            await done.wait()
            return
        limits = tcp_server.Limits(args.max_connections, args.handshake_timeout, args.idle_timeout)
        server = await tcp_server.serve_tcp(*arguments.split_host_port(args.listen), store, office, limits,
                                            reuse_port=args.reuse_port, recorder=recorder)
        log.info("listening on %s", args.listen)
        async with server:
            await done.wait()
        log_limit.limit.flush(force=True)  # what the rate limit held back, summed up
        c = server.committer
        log.info("ingest: %d frames in %d group commits", c.frames_in_groups, c.groups)

    try:
        asyncio.run(run())
    except OSError as e:  # the address cannot be bound or resolved
        print("collector: cannot listen on %s: %s" % (args.listen, e.strerror or e), file=sys.stderr)
        return 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=1)
        authorisations.join(timeout=60)  # its last pass; a link waits at most its timeout per try
        store.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, type=arguments.database,
                        help="SQLite database file, or postgresql://USER@HOST:PORT/NAME (several collectors may "
                             "share one; migrate it first: `db migrate`)")
    parser.add_argument("--listen", metavar="HOST:PORT", type=arguments.host_port, help="accept terminals over TCP")
    parser.add_argument("--reuse-port", action="store_true",
                        help="share --listen with other collectors (SO_REUSEPORT: the kernel spreads connections)")
    parser.add_argument("--serial", metavar="PORT", action="append", type=arguments.serial_port,
                        help="serve a serial port or pty (repeatable)")
    parser.add_argument("--acquirer", metavar="HOST:PORT", type=arguments.host_port,
                        help="authorise stored records over ISO 8583 with this `acquirer-host`")
    parser.add_argument("--acquirer-rules", metavar="FILE", type=arguments.json_file,
                        help="without --acquirer: JSON rules of the acquirer run in this process (default: "
                             "approve all)")
    parser.add_argument("--bundles", metavar="DIR", type=arguments.existing_folder,
                        help="signed fleet bundles (DIR/*.zfb, `bundle make`): the newest of each kind goes to "
                             "every terminal that lacks it")
    parser.add_argument("--seal-key", metavar="PRIVATE.pem", type=arguments.existing_file,
                        help="the collector's key that opens sealed card data (default: the development key)")
    parser.add_argument("--max-connections", metavar="N", type=_positive(int), default=tcp_server.MAX_CONNECTIONS,
                        help="TCP connections served at once; more are closed at once (default %(default)s)")
    parser.add_argument("--handshake-timeout", metavar="S", type=_positive(float),
                        default=tcp_server.HANDSHAKE_TIMEOUT,
                        help="close a connection not authenticated within S seconds (default %(default)s)")
    parser.add_argument("--idle-timeout", metavar="S", type=_positive(float), default=tcp_server.IDLE_TIMEOUT,
                        help="close an authenticated connection silent for S seconds; terminals send STATUS "
                             "every 5 s (default %(default)s)")
    parser.add_argument("--record", metavar="DIR",
                        help="field capture: every link's bytes both ways with times, one file per link in DIR "
                             "(protocol/CAPTURE.md); replay with `sim replay`")
    parser.add_argument("--crash-after-commits", metavar="N", type=int,
                        help="fault injection: SIGKILL the collector right after its Nth record commit, "
                             "before that commit is acknowledged")


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError("%r is not a positive number" % text)
        return value
    parse.__name__ = kind.__name__
    return parse


def _file_limit(wanted):
    """Raise the soft limit of open files towards `wanted` (one per connection), within the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            log.warning("only %d open files allowed: fewer connections than --max-connections fit", new)
