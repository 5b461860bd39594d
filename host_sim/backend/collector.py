"""`python -m host_sim collector`: the backend process.  It serves terminals over TCP
(host_sim/backend/tcp_server.py) and serial ports (serial_server.py), each link a host Session
(host_session.py) over one Store (store.py), with the Backoffice's policy (backoffice.py): the
acquirer, deny-list deltas, fleet bundles, heartbeats."""

import asyncio
import logging
import signal
import threading

from host_sim.backend import acquirer
from host_sim.backend.backoffice import Backoffice
from host_sim.backend.serial_server import serve_serial
from host_sim.backend.store import Store
from host_sim.backend.tcp_server import serve_tcp

log = logging.getLogger("collector")


def main(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = Store(args.db, args.crash_after_commits)
    rules = acquirer.load_rules(args.acquirer_rules) if args.acquirer_rules else None
    office = Backoffice(store, acquirer.Acquirer(rules), args.bundles)
    stop = threading.Event()
    threads = []
    for port in args.serial or ():
        t = threading.Thread(target=serve_serial, args=(port, store, stop, None, office), daemon=True)
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
        host, _, port = args.listen.rpartition(":")
        server = await serve_tcp(host or "127.0.0.1", int(port), store, office)
        log.info("listening on %s", args.listen)
        async with server:
            await done.wait()
        c = server.committer
        log.info("ingest: %d frames in %d group commits", c.frames_in_groups, c.groups)

    try:
        asyncio.run(run())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=1)
        store.close()
    return 0


def add_arguments(parser):
    parser.add_argument("--db", required=True, help="SQLite database file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="accept terminals over TCP")
    parser.add_argument("--serial", metavar="PORT", action="append", help="serve a serial port or pty (repeatable)")
    parser.add_argument("--acquirer-rules", metavar="FILE",
                        help="JSON rules of the simulated acquirer run after each stored batch (default: approve all)")
    parser.add_argument("--bundles", metavar="DIR",
                        help="signed fleet bundles (DIR/*.zfb, `bundle make`): the newest of each kind goes to "
                             "every terminal that lacks it")
    parser.add_argument("--crash-after-commits", metavar="N", type=int,
                        help="fault injection: SIGKILL the collector right after its Nth record commit, "
                             "before that commit is acknowledged")
