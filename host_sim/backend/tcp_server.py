"""The collector over TCP: one Session per connection, every link's reads sharing group commits
(host_sim/backend/ingest.py)."""

import asyncio
import logging

from host_sim.backend import ingest
from host_sim.backend.host_session import Session
from host_sim.backend.store import StoreError

log = logging.getLogger("collector")


async def serve_tcp(host, port, store, backoffice=None):
    """Serve terminals over TCP; every link's reads share group commits (host_sim/backend/ingest.py)."""
    committer = ingest.GroupCommitter(store)

    async def client(reader, writer):
        session = Session(store, backoffice=backoffice)
        peer = writer.get_extra_info("peername")
        log.info("connection from %s", peer)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.1)
                except asyncio.TimeoutError:
                    data = None
                if data == b"":
                    break
                if data:
                    reply = await committer.receive(session, data)
                else:
                    reply = session.receive(b"")  # timers only: nothing to store, nothing to wait for
                if reply:
                    writer.write(reply)
                    await writer.drain()
        except StoreError as e:
            log.error("closing the link of %s: %s; it will send its records again", session.terminal or peer, e)
        except ConnectionError as e:
            log.info("connection from %s lost: %s", peer, e)
        finally:
            writer.close()

    server = await asyncio.start_server(client, host, port)
    server.committer = committer  # type: ignore[attr-defined]  # counters for tests and benchmarks
    return server
