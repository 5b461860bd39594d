"""Store and forward end to end over a cellular modem: the virtual board's uplink UART goes to the modem
emulator, whose socket goes over real TCP on loopback to `python -m host_sim collector --listen`.
Faults on the way: the socket closed mid-batch, the PDP context deactivated, a power cut of the
terminal, and a collector killed mid-batch, provably: while the collector is down a backlog of taps
builds up, and the collector started next (over a slowed modem link, so the backlog's frames reach it
one by one) has `--crash-after-commits 1`: it SIGKILLs itself right after committing the backlog's
first RECORDS frame and before acknowledging it.  The database then holds
part of the backlog; a normal collector started after it hears the whole backlog again (the terminal's
first STATUS counts every backlog record as unacknowledged) and every accepted tap is stored exactly
once."""

import json
import re
import signal
import time

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.modem import ModemEmulator
from host_sim.emulators.scanner import ScannerEmulator
from host_sim.tools import provision, vboard
from protocol import record
from tests.vboard.helpers import Events, free_port, mpremote, payment_code, start_collector
from tests.waiting import wait_until

PAN = "6228480000000000018"  # an account of the unionpay-card test issuer: the collector approves its codes
HEAP = vboard.DEFAULT_HEAP  # the modem driver (~25 KB) rides on top of the whole terminal


def wait_ready(events, start, timeout=30):
    """The READY display of the next boot (the console tail is too noisy to search after a while)."""
    wait_until(lambda: any(e.get("text") == "READY" for e in events.items[start:]), timeout,
               what="the board to come back (READY)")


def stored(db):
    store = Store(db)
    try:
        return {seq: atc for seq, atc in store.query("SELECT seq, atc FROM records WHERE kind != ?",
                                                      (record.KIND_SEAL_KEY,))}  # taps, not epoch keys
    finally:
        store.close()


def acknowledged_all(db, terminal):
    """True once a STATUS received after the newest record says the terminal's journal is empty."""
    store = Store(db)
    try:
        rows = store.query("SELECT depth FROM terminal_status WHERE terminal = ? AND received > "
                           "(SELECT MAX(received) FROM records)", (terminal,))
        return rows == [(0,)]
    finally:
        store.close()


BACKLOG = 8  # taps while the collector is down: more than one RECORDS frame holds (five QR records)
SLOW_MS = 150  # modem replies delayed: a frame's CIPSEND/QISEND takes >= 2 x this


@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_every_tap_reaches_the_collector_once_through_modem_faults_power_cut_and_collector_crash(
        tmp_path, dialect):
    db = str(tmp_path / "c.db")
    port = free_port()
    emu = ModemEmulator(dialect, connect=("127.0.0.1", port), faults={"close_after": 500}, seed=11).start()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), heap=HEAP, attach={"uplink": emu.port}).start()
    server = None
    events = scanner = None
    paid = {}
    seen = 0

    def tap(n):
        """Present code n until the terminal answers PAID (a power cut or a decline: shown again)."""
        nonlocal seen
        payload = payment_code(PAN, 300 + n)
        attempt = 0
        while True:
            scanner.present(payload)
            attempt += 1
            if n == 4 and attempt == 1:  # cut the power while the code is being read
                time.sleep(0.05)
                mark = len(events.items)
                board.power_cut()
                board.power_on()
                wait_ready(events, mark)
                seen = len(events.items)
            try:
                i, ev = events.wait_display(seen, timeout=5)
            except TimeoutError:
                continue  # no answer: the passenger shows the code again
            seen = i + 1
            if ev["text"].startswith("DECLINED"):
                continue
            seq = int(ev["detail"].lstrip("#"))
            assert paid.setdefault(n, seq) == seq, "a re-presented code was charged again"
            return seq

    try:
        board.wait_console(b"ready:", timeout=20)
        cfg = {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port, "apn": "cmnet"}
        mpremote(board.ports["console"], "exec",
                 "import os\ntry:\n os.mkdir('/flash/config')\nexcept OSError:\n pass\n"
                 "with open('/flash/config/uplink.json', 'w') as f:\n f.write(%r)" % json.dumps(cfg))
        mark = board.console_mark()
        terminal = provision.provision(board.ports["console"], db)
        board.wait_console(b"ready:", timeout=20, since=mark)
        server = start_collector(db, port, str(tmp_path / "collector1.log"))
        events = Events(board.ports["events"])  # torn lines of a power cut are skipped
        scanner = ScannerEmulator(board.ports["scanner"])
        # 1. Taps through the socket closed mid-batch, a PDP deactivation and a power cut.
        for n in range(5):
            if n == 3:
                emu.inject("pdp_deact_after", emu.counters["bytes_up"] + 300)
            tap(n)
            time.sleep(0.3)  # taps a moment apart, as passengers come: uplink traffic (and its faults) between them
        wait_until(lambda: set(stored(db)) >= set(paid.values()) and acknowledged_all(db, terminal), timeout=90,
                   interval=0.3, what="the taps before the backlog stored and acknowledged", context=board.console_text)
        # 2. The collector goes away; a backlog builds up in the terminal's journal.
        server.kill()
        server.wait()
        server = None
        backlog = [tap(n) for n in range(5, 5 + BACKLOG)]
        assert len(set(backlog)) == BACKLOG and not set(backlog) & set(stored(db))
        # 3. A collector that dies right after its first commit, before that commit's ACK.  The link is
        # slow meanwhile, so the backlog's RECORDS frames reach it apart (not in one group commit).
        emu.inject("slow_ms", SLOW_MS)
        crash_log = tmp_path / "collector2.log"
        server = start_collector(db, port, str(crash_log), "--crash-after-commits", "1")
        assert server.wait(timeout=90) == -signal.SIGKILL
        server = None
        emu.inject("slow_ms", 0)
        assert b"fault injection: crashing after commit 1" in crash_log.read_bytes()
        committed = set(backlog) & set(stored(db))
        assert 0 < len(committed) < BACKLOG, "the collector did not die mid-batch: %s" % sorted(committed)
        # 4. A normal collector: the terminal re-sends the whole backlog, the collector de-duplicates.
        restart_log = tmp_path / "collector3.log"
        server = start_collector(db, port, str(restart_log))
        rows = wait_until(lambda: [r for r in [stored(db)] if set(r) >= set(paid.values())], timeout=90,
                          interval=0.3, what="every accepted tap stored", context=board.console_text)[0]
        status = rb"STATUS from %s: depth (\d+)" % terminal.encode()
        first_status = wait_until(lambda: re.search(status, restart_log.read_bytes()), timeout=20, interval=0.3,
                                  what="a STATUS from the terminal", context=board.console_text)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if events is not None:
            events.close()
        if scanner is not None:
            scanner.close()
        board.stop()
        emu.close()
    # Nothing of the backlog was acknowledged by the crashed collector: the terminal still held all of it,
    # so the records it had committed reached the new collector again, as duplicate receipts.
    assert int(first_status.group(1)) == BACKLOG
    assert len(paid) == 5 + BACKLOG and set(paid.values()) <= set(rows)
    atcs = list(rows.values())
    assert len(set(atcs)) == len(atcs), "a presented code stored twice"
    assert emu.counters["faults_fired"] >= 2 and emu.counters["opens"] >= 4
