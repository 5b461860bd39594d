"""`flash` and `provision` check what the board reads back against what they wrote (SHA-256)."""

import hashlib

import pytest

from host_sim.tools import flash, provision


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_flash_accepts_a_board_that_holds_every_file_as_built(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.py").write_bytes(b"main")
    (tmp_path / "lib" / "a.mpy").write_bytes(b"\x4d\x06a")
    out = "noise\nsha256 main.py %s\nsha256 lib/a.mpy %s\n" % (sha(b"main"), sha(b"\x4d\x06a"))
    flash.check_hashes(str(tmp_path), ["main.py", "lib/a.mpy"], out)


@pytest.mark.parametrize("board_says", ["sha256 lib/a.mpy %s" % sha(b"\x4d\x06"),  # cut short
                                        "sha256 lib/a.mpy -",  # unreadable
                                        ""])  # never reported
def test_flash_names_a_file_the_board_does_not_hold_as_built(tmp_path, board_says):
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.py").write_bytes(b"main")
    (tmp_path / "lib" / "a.mpy").write_bytes(b"\x4d\x06a")
    out = "sha256 main.py %s\n%s\n" % (sha(b"main"), board_says)
    with pytest.raises(RuntimeError, match=r"1 of 2 files differ .*: lib/a\.mpy$"):
        flash.check_hashes(str(tmp_path), ["main.py", "lib/a.mpy"], out)


def test_provision_verifies_each_file_and_names_one_read_back_wrong():
    wrote = {"/flash/keys/device.key": b"k" * 32, "/flash/config/group": b"route-7\n"}
    good = {path: sha(data) for path, data in wrote.items()}
    assert provision.check_read_back(wrote, good) == ["/flash/config/group", "/flash/keys/device.key"]
    bad = dict(good, **{"/flash/keys/device.key": "-"})
    with pytest.raises(provision.ProvisionError, match=r"^read back from the board, /flash/keys/device\.key is not"):
        provision.check_read_back(wrote, bad)


def test_files_written_follow_the_options():
    assert provision.files_written() == ["/flash/keys/device.key", "/flash/keys/seal.pub", "/flash/keys/token"]
    assert provision.GROUP_PATH in provision.files_written(group="route-7")
    assert provision.CONFIG_KEYS_PATH in provision.files_written(config_keys="k.pub")
