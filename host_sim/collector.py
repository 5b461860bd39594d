"""The collector (backend) of the first slice: stores uploaded records exactly once in SQLite.

`Session` is the protocol without I/O: bytes in, bytes out, so the same code serves a serial port,
a pty and a TCP connection.  A batch is acknowledged only after its transaction committed; a batch
the collector already has is acknowledged again (the terminal missed the first ACK) and its records
are counted as duplicate receipts, never stored twice.  Malformed frames and batches are refused and
logged; nothing of them is stored.
"""

import asyncio
import logging
import sqlite3
import threading

from protocol import frame, messages, record

log = logging.getLogger("collector")

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    terminal TEXT PRIMARY KEY, runtime TEXT, last_hello REAL);
CREATE TABLE IF NOT EXISTS records (
    terminal TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER, kind INTEGER, amount INTEGER,
    currency INTEGER, decision INTEGER, reason INTEGER, fare_id INTEGER, token BLOB, atc BLOB,
    raw BLOB NOT NULL, received REAL DEFAULT (julianday('now')),
    PRIMARY KEY (terminal, seq));
"""


class Store:
    """SQLite in WAL mode; a small interface so a larger deployment can swap the database."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def hello(self, terminal, runtime):
        with self.lock:
            self.db.execute("INSERT INTO terminals VALUES (?, ?, julianday('now')) ON CONFLICT(terminal) "
                            "DO UPDATE SET runtime=excluded.runtime, last_hello=excluded.last_hello",
                            (terminal, runtime))

    def store(self, recs):
        """Insert decoded records in one transaction; returns how many were new."""
        with self.lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            new = 0
            try:
                for rec in recs:
                    cur.execute(
                        "INSERT OR IGNORE INTO records (terminal, seq, time, kind, amount, currency, decision,"
                        " reason, fare_id, token, atc, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (rec["terminal"].hex(), rec["seq"], rec["time"], rec["kind"], rec["amount"],
                         rec["currency"], rec["decision"], rec["reason"], rec["fare_id"], rec["token"],
                         rec["ext"].get(record.EXT_ATC), rec["raw"]))
                    new += cur.rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return new

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def close(self):
        self.db.close()


class Session:
    """One link to one terminal, without I/O."""

    def __init__(self, store):
        self.store = store
        self.frames = frame.FrameReader()
        self.terminal = None
        self.stored = 0
        self.duplicate_receipts = 0
        self.refused = 0

    def receive(self, data):
        out = bytearray()
        for payload in self.frames.feed(data):
            reply = self._handle(payload)
            if reply:
                out += frame.encode(reply)
        return bytes(out)

    def _handle(self, payload):
        try:
            kind, body = messages.parse(payload)
            if kind == messages.HELLO:
                terminal, runtime = body
                self.terminal = terminal.hex()
                self.store.hello(self.terminal, runtime)
                log.info("HELLO from %s running %s", self.terminal, runtime)
                return None
            if kind == messages.RECORDS:
                recs = []
                for raw in body:
                    rec = record.decode(raw)
                    rec["raw"] = raw
                    recs.append(rec)
                if not recs:
                    return None
                new = self.store.store(recs)
                self.stored += new
                self.duplicate_receipts += len(recs) - new
                return messages.ack(max(r["seq"] for r in recs))
            raise messages.MessageError("unexpected message type %d from a terminal" % kind)
        except (messages.MessageError, record.RecordError, UnicodeError) as e:
            self.refused += 1
            log.warning("refused a frame from %s: %s", self.terminal or "unknown terminal", e)
            return None


def serve_serial(port, store, stop):
    """Blocking loop for a serial port or pty (pyserial URL or path); returns the Session at stop."""
    import serial

    ser = serial.serial_for_url(port, baudrate=115200, timeout=0.05)
    session = Session(store)
    try:
        while not stop.is_set():
            data = ser.read(512)
            if data:
                reply = session.receive(data)
                if reply:
                    ser.write(reply)
    finally:
        ser.close()
    return session


async def serve_tcp(host, port, store):
    async def client(reader, writer):
        session = Session(store)
        peer = writer.get_extra_info("peername")
        log.info("connection from %s", peer)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                reply = session.receive(data)
                if reply:
                    writer.write(reply)
                    await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)


def main(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = Store(args.db)
    stop = threading.Event()
    threads = []
    for port in args.serial or ():
        t = threading.Thread(target=serve_serial, args=(port, store, stop), daemon=True)
        t.start()
        threads.append(t)

    async def run():
        if args.listen:
            host, _, port = args.listen.rpartition(":")
            server = await serve_tcp(host or "127.0.0.1", int(port), store)
            log.info("listening on %s", args.listen)
            async with server:
                await server.serve_forever()
        else:
            while True:
                await asyncio.sleep(3600)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
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
