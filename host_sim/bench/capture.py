"""`python -m host_sim bench capture --json`: what recording costs and how fast a capture replays.

`--records` accepted taps of one terminal are uploaded over TCP (loopback) to a collector twice, once
without and once with a Recorder (`collector --record`); then the capture is opened with the device key
and its records replayed (`sim replay --to`) to a fresh collector, which must hold the same records.

    upload_s / upload_recorded_s   wall time of the upload without and with the capture written
    capture_bytes_per_record       the capture file's size per record (both directions, framing, entries)
    decode_records_per_s           records per second out of the capture (read + session keys + open)
    replay_records_per_s           records per second replayed and acknowledged by the fresh collector
    same_records                   the fresh collector holds the original's records, byte for byte
"""

import asyncio
import os
import tempfile
import threading
import time

from host_sim.backend import tcp_server
from host_sim.backend.store import Store
from host_sim.sim import capture, replay
from protocol import record

TERMINAL = b"ZF\x00\x00\x00\x00\x0c\x01"
KEY = bytes(range(32))
ROWS = "SELECT terminal, seq, raw FROM records ORDER BY terminal, seq"


class LoopbackCollector:
    """serve_tcp on a free loopback port, in a thread with its own event loop (also the capture tests')."""

    def __init__(self, store, recorder=None):
        self.store, self.recorder = store, recorder
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self):
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()
        server = await tcp_server.serve_tcp("127.0.0.1", 0, self.store, None, recorder=self.recorder)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        async with server:
            await self.done.wait()
        server.housekeeping.cancel()  # type: ignore[attr-defined]

    def __enter__(self):
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the loopback collector did not start within 10 s")
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(10)


def _records(n):
    return [record.encode(TERMINAL, seq, 1_800_000_000 + seq, record.KIND_QR_CPM, 200, 156, record.ACCEPTED, 0, 1,
                          bytes((seq * 7 + i) & 0xFF for i in range(16)),
                          [(record.EXT_ATC, (seq & 0xFFFF).to_bytes(2, "big"))]) for seq in range(1, n + 1)]


def _store(path):
    store = Store(path)
    store.register(TERMINAL.hex(), KEY)
    return store


def _upload(store, recs, recorder=None):
    with LoopbackCollector(store, recorder) as c:
        start = time.perf_counter()
        replay.upload("127.0.0.1", c.port, TERMINAL, KEY, recs, timeout=600)
        return time.perf_counter() - start


def run(args):
    recs = _records(args.records)
    with tempfile.TemporaryDirectory(prefix="zhifu-bench-capture-") as tmp:
        plain = _upload(_store(os.path.join(tmp, "plain.db")), recs)
        original = _store(os.path.join(tmp, "a.db"))
        recorded = _upload(original, recs, capture.Recorder(os.path.join(tmp, "cap")))
        (name,) = os.listdir(os.path.join(tmp, "cap"))
        path = os.path.join(tmp, "cap", name)
        start = time.perf_counter()
        got = capture.records(capture.decode(capture.read(path), lambda tid: KEY))
        decode_s = time.perf_counter() - start
        fresh = _store(os.path.join(tmp, "b.db"))
        replay_s = _upload(fresh, got)
        return {"records": len(recs), "upload_s": round(plain, 3), "upload_recorded_s": round(recorded, 3),
                "capture_bytes_per_record": round(os.path.getsize(path) / len(recs), 1),
                "decode_records_per_s": round(len(got) / decode_s), "replay_records_per_s": round(len(got) / replay_s),
                "same_records": fresh.query(ROWS) == original.query(ROWS)}


def add_arguments(parser):
    parser.add_argument("--records", type=int, default=5000, help="records the terminal uploads (default 5000)")
