"""firmware/identity.py on both runtimes: the credential token is SHA-256(salt || account digits)
truncated to 16 bytes (checked against hashlib on CPython); the salt file persists; terminal ids are
8 bytes.
"""

import hashlib
import os

import pytest
from hypothesis import strategies as st
from runtimes import draw_examples

# --- bodies --------------------------------------------------------------------------------------


def body_tokens(salt, account):
    from firmware import identity

    as_str = identity.credential_token(salt, account)
    as_bytes = identity.credential_token(salt, account.encode())
    assert as_str == as_bytes, (as_str, as_bytes)
    return as_str


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


def reference(salt, account):
    return hashlib.sha256(salt + account.encode()).digest()[:16]


def test_token_is_salted_sha256(runtime):
    salt = bytes(range(16))
    pan = "1234567890123458"
    token = runtime.run(body_tokens, salt, pan)
    assert token == reference(salt, pan)
    assert len(token) == 16
    assert pan.encode() not in token and bytes.fromhex(pan) not in token


def test_token_property(runtime):
    examples = draw_examples(
        st.tuples(st.binary(min_size=16, max_size=16), st.text("0123456789", min_size=12, max_size=19))
    )
    tokens = runtime.run_many(body_tokens, examples)
    assert tokens == [reference(salt, pan) for salt, pan in examples]


def test_token_depends_on_salt_and_account(runtime):
    pan = "6212345678901234"
    batch = [(b"\x00" * 16, pan), (b"\x00" * 15 + b"\x01", pan), (b"\x00" * 16, "6212345678901235")]
    tokens = runtime.run_many(body_tokens, batch)
    assert len(set(tokens)) == 3


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
