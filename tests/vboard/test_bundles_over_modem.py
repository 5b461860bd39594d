"""Config bundles of every kind over a cellular modem, each dialect: the collector offers the fleet token key
(kind 4), a deny-list delta (kind 1), a ticket-keys bundle (kind 2) and a fare bundle (kind 3) to a terminal
whose uplink is the modem emulator's socket, and the terminal takes every one with no "out of memory" on
its console (the receive path stays within its preallocated buffers however the modem splits the bytes)."""

import json

import pytest

from host_sim.backend.store import Store
from host_sim.emulators.modem import ModemEmulator
from host_sim.tools import bundle, tickets, vboard
from protocol import fleet
from tests.vboard.helpers import free_port, mpremote, provisioned, start_collector
from tests.waiting import wait_until

KINDS = (fleet.KIND_TOKEN_KEY, 1, fleet.KIND_TICKET_KEYS, fleet.KIND_FARES)  # 1: the deny list (protocol/bundle.py)


def shelf(directory, key_file):
    """A fare bundle and a ticket-keys bundle of a few keys and revocations, signed by the authority."""
    key, key_id = bundle.load_signer(key_file)
    n = tickets.generate_key().public_key().public_numbers().n
    keys = [(1, i, n) for i in range(3)]
    revoked = [(100, i) for i in range(8)]
    (directory / "keys.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_TICKET_KEYS, 1,
                                                     bundle.ticket_keys_body(keys, revoked)))
    (directory / "fares.zfb").write_bytes(bundle.sign(key, key_id, fleet.KIND_FARES, 1, bundle.fares_body({1: 350})))


def delivered(db, terminal):
    store = Store(db)
    try:
        return {kind for (kind,) in store.query("SELECT kind FROM config_delivered WHERE terminal = ?", (terminal,))}
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["simcom", "quectel"])
def test_bundles_of_every_kind_arrive_over_the_modem_without_running_out_of_memory(tmp_path, dialect):
    db = str(tmp_path / "c.db")
    keys = tmp_path / "keys"
    keys.mkdir()
    bundle.keygen(str(keys / "authority.pem"), 1)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    shelf(bundles, str(keys / "authority.pem"))
    port = free_port()
    emu = ModemEmulator(dialect, connect=("127.0.0.1", port), seed=5).start()
    board = vboard.VirtualBoard(str(tmp_path / "flash.img"), heap=vboard.DEFAULT_HEAP,
                                attach={"uplink": emu.port})
    console = bytearray()  # the whole console, not just the tail the board keeps
    keep = board._from_console
    board._from_console = lambda data: keep(console.extend(data) or data)
    board.start()
    server = None
    try:
        board.wait_console(b"ready:", timeout=20)
        cfg = {"link": "modem", "dialect": dialect, "host": "127.0.0.1", "port": port, "apn": "cmnet"}
        mpremote(board.ports["console"], "exec",
                 "import os\ntry:\n os.mkdir('/flash/config')\nexcept OSError:\n pass\n"
                 "with open('/flash/config/uplink.json', 'w') as f:\n f.write(%r)" % json.dumps(cfg))
        terminal = provisioned(board, db, config_keys=str(keys / "authority.pem.pub"))
        store = Store(db)
        try:
            for i in range(40):
                store.deny(bytes([i]) * 16, "test")
        finally:
            store.close()
        server = start_collector(db, port, str(tmp_path / "collector.log"), "--bundles", str(bundles))
        wait_until(lambda: delivered(db, terminal) >= set(KINDS), timeout=90, interval=0.2,
                   what="a bundle of every kind delivered", context=board.console_text)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        board.stop()
        emu.close()

    assert b"out of memory" not in console
