"""firmware/identity.py on both runtimes: the salt file persists; the fleet token key file
(/flash/keys/token, version u32 LE + key) is read back as written and a damaged one counts as no key
(payment taps then decline); terminal ids are 8 bytes.  The token itself: tests/protocol/test_tokens.py.
"""

import os

import pytest

# --- bodies --------------------------------------------------------------------------------------


def body_token_key(root, writes, damaged):
    """identity.token_key after each save (None before any); then after the file was damaged."""
    from firmware import identity

    out = [identity.token_key(root)]
    for version, key in writes:
        identity.save_token_key(root, version, key)
        out.append(list(identity.token_key(root)))
    with open(root + "/" + identity.TOKEN_KEY_FILE, "wb") as f:
        f.write(damaged)
    out.append(identity.token_key(root))
    return out


def body_salt(root):
    from firmware import identity

    first = identity.salt(root)
    again = identity.salt(root)
    with open(root + "/" + identity.SALT_FILE, "rb") as f:
        stored = f.read()
    return first, again, stored


def body_terminal_ids(uids):
    from firmware import identity

    class Board:
        def __init__(self, uid):
            self.uid = uid

        def unique_id(self):
            return self.uid

    return [identity.terminal_id(Board(uid)) for uid in uids]


# --- tests ----------------------------------------------------------------------------------------------


def host_dir(runtime, path):
    if runtime.name == "board":
        pytest.skip("uses a directory of this host, which a real board cannot see")
    return str(path)


def test_salt_is_created_once_and_kept(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    first, again, stored = runtime.run(body_salt, root)
    assert len(first) == 16 and first == again == stored
    assert os.path.exists(os.path.join(root, "keys", "salt"))
    # a reboot (a new process) reads the same salt
    assert runtime.run(body_salt, root)[0] == first


def test_token_key_file_is_kept_and_a_damaged_one_is_no_key(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    got = runtime.run(body_token_key, root, [(1, bytes(32)), (2, bytes(range(32)))], b"short")
    assert got == [None, [1, bytes(32)], [2, bytes(range(32))], None]
    with open(os.path.join(root, "keys", "token"), "wb") as f:
        f.write((7).to_bytes(4, "little") + bytes([9]) * 32)
    assert tuple(runtime.run(body_token_key, root, [], b"")[0]) == (7, bytes([9]) * 32)  # as provisioning writes it


def test_salt_differs_between_terminals(runtime, tmp_path):
    a = runtime.run(body_salt, host_dir(runtime, tmp_path / "a"))[0]
    b = runtime.run(body_salt, host_dir(runtime, tmp_path / "b"))[0]
    assert a != b


def test_terminal_id_is_8_bytes(runtime):
    uids = [b"\x56\x42\x00\x00\x01", b"", bytes(range(8)), bytes(range(12))]
    assert runtime.run(body_terminal_ids, uids) == [
        b"\x56\x42\x00\x00\x01\x00\x00\x00",
        bytes(8),
        bytes(range(8)),
        bytes(range(8)),
    ]
