"""Opening card data the terminals sealed to this collector (protocol/seal.py, seal_open.py; SPEC.md "Sealed
card data").

A terminal journals each epoch key, RSA-OAEP-wrapped to the collector's public key, in KIND_SEAL_KEY records
(at sequence numbers key id and key id + 1) before the first tap sealed under it.  `open_sealed` finds those
records in the store, unwraps the key with the collector's private key and opens the tap's EXT_EMV_SEALED.
SealPending: the key records have not arrived yet, ask again later.  SealBroken: the data or its key records
were altered, or were sealed to a key this collector does not hold; it will never open.

The collector's key is `--seal-key PRIVATE.pem`; without it, a development key created on first use under
host_sim/.seal_keys/ (host_sim/paths.py SEAL_KEYS), which provisioning puts on boards by default.
"""

import os
import threading

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from host_sim import paths
from host_sim.backend.card_data import CardDataUnavailable
from protocol import record, seal, seal_open

DEV_KEY = os.path.join(paths.SEAL_KEYS, "collector.pem")
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_CACHE = 1024  # unwrapped epoch keys kept: one RSA private operation per epoch, not per record


class SealPending(CardDataUnavailable):
    """The epoch key's records are not in the store yet: the transaction stays pending."""


class SealBroken(CardDataUnavailable):
    """Sealed data or its key records altered, or sealed to another host key: it never opens here."""


def generate():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_new(path, data, mode=0o600):
    """Create `path` with `data` unless it exists (atomic: concurrent first uses agree on one file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def dev_key_path():
    """The development key's file, created on first use."""
    if not os.path.exists(DEV_KEY):
        write_new(DEV_KEY, private_pem(generate()))
    return DEV_KEY


def load_private(path=None):
    with open(path or dev_key_path(), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 2048:
        raise ValueError("%s: not an RSA-2048 private key" % path)
    return key


def public_modulus(path=None):
    """The RSA-2048 modulus of a public or private PEM key file (default: the development key)."""
    with open(path or dev_key_path(), "rb") as f:
        data = f.read()
    if b"PRIVATE KEY" in data:
        public = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, rsa.RSAPublicKey) or public.key_size != 2048 or public.public_numbers().e != 65537:
        raise ValueError("%s: not an RSA-2048 key with exponent 65537" % path)
    return public.public_numbers().n


class Opener:
    """open_sealed with given private keys (the current one and any older ones terminals may still use)."""

    def __init__(self, keys):
        self.keys = {seal.fingerprint(k.public_key().public_numbers().n): k for k in keys}
        # wrapped epoch key -> epoch key: the RSA decryption once per epoch.  Keyed by the wrapped bytes, not
        # by (terminal, key id), which another terminal image or database can reuse for another key.
        self._epochs = {}
        self._lock = threading.Lock()

    def __call__(self, store, terminal, rec):
        """The sealed TLV of `rec`, opened; None when it has none."""
        value = rec["ext"].get(record.EXT_EMV_SEALED)
        if value is None:
            return None
        try:
            key_id = seal_open.key_id_of(value)
            return seal_open.open_data(self.epoch_key(store, terminal, key_id), value, rec["token"])
        except seal_open.SealError as e:
            raise SealBroken("record %s/%d: %s" % (terminal, rec["seq"], e)) from None

    def epoch_key(self, store, terminal, key_id):
        values = []
        for i in range(seal.PARTS):
            raw = store.record(terminal, key_id + i)
            if raw is None:
                raise SealPending("key %d of terminal %s: record %d not stored yet" % (key_id, terminal, key_id + i))
            try:
                rec = record.decode(raw)
            except record.RecordError as e:
                raise seal_open.SealError(str(e)) from None
            part = rec["ext"].get(record.EXT_SEAL_KEY)
            if rec["kind"] != record.KIND_SEAL_KEY or part is None:
                raise seal_open.SealError("record %d is no seal key record" % (key_id + i))
            if seal_open.parse_key_part(part)[:2] != (key_id, i):
                raise seal_open.SealError("record %d holds another key part" % (key_id + i))
            values.append(part)
        _, fp, wrapped = seal_open.join_parts(values)
        with self._lock:
            key = self._epochs.get(wrapped)
        if key is not None:
            return key
        private = self.keys.get(fp)
        if private is None:
            raise seal_open.SealError("sealed to host key %s, which this collector does not hold" % fp.hex())
        try:
            key = private.decrypt(wrapped, _OAEP)
        except ValueError:
            raise seal_open.SealError("epoch key does not unwrap") from None
        if len(key) != seal.KEY_SIZE:
            raise seal_open.SealError("epoch key of %d bytes" % len(key))
        with self._lock:
            if len(self._epochs) >= _CACHE:
                self._epochs.clear()
            self._epochs[wrapped] = key
        return key


_OPENERS = {}


def opener(path=None):
    """The Opener of the private key in `path` (default: the development key), made once per path."""
    path = path or dev_key_path()
    got = _OPENERS.get(path)
    if got is None:
        got = _OPENERS[path] = Opener([load_private(path)])
    return got


def open_sealed(store, terminal, rec):
    """The sealed TLV of `rec` opened with the development key; None when it has none.
    Raises SealPending (ask again later) or SealBroken."""
    return opener()(store, terminal, rec)
