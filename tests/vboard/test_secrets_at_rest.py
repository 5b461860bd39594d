"""Secrets at rest on the virtual board: after provisioning, the littlefs partition of the flash image holds
no key in clear (device key, fleet token key, journal salt): they are wrapped under the board secret, which
the launcher keeps beside the image (<image>.secret), as a chip keeps an eFuse key outside its flash."""

import pytest

from host_sim.backend.store import Store
from host_sim.tools import vboard
from tests.vboard.helpers import mpremote, provisioned

VFS_SIZE = 4096 * 1024  # hardware/boards/virtual.py: the littlefs partition at the start of the image


@pytest.mark.virtual_only("reads the flash image")
def test_a_copy_of_the_littlefs_partition_holds_no_key_in_clear(board, tmp_path):
    db = str(tmp_path / "collector.db")
    terminal = provisioned(board, db)
    store = Store(db)
    try:
        device_key = store.device_key(terminal)
        token_key = store.token_key()[1]
    finally:
        store.close()
    out = mpremote(board.ports["console"], "exec",
                   "import board\nfrom firmware import identity, keystore, uplink\nkeystore.use(board.secret())\n"
                   "print(identity.salt('/flash').hex(), uplink.read_key('/flash/keys/device.key').hex(), "
                   "identity.token_key('/flash')[1].hex())")
    salt, held, token = out.split()[-3:]
    assert bytes.fromhex(held) == device_key and bytes.fromhex(token) == token_key  # the board reads them
    with open(board.flash, "rb") as f:
        partition = f.read(VFS_SIZE)
    for name, secret in (("device key", device_key), ("token key", token_key), ("salt", bytes.fromhex(salt))):
        assert secret not in partition, name
        assert secret.hex().encode() not in partition, name
    assert b"ZKW1" in partition  # the wrapped files are there


def test_the_board_secret_stays_outside_the_image_and_across_restarts(tmp_path):
    path = str(tmp_path / "flash.img")
    b = vboard.VirtualBoard(path).start()
    try:
        b.wait_console(b"ready:", timeout=20)
        first = open(path + ".secret", "rb").read()
        b.restart()
        b.wait_console(b"ready:", timeout=20, since=b.console_mark())
    finally:
        b.stop()
    assert len(first) == 32 and open(path + ".secret", "rb").read() == first
    assert first not in open(path, "rb").read()
