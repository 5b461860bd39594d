"""Link protocol v1 security: mutual AUTH with the per-device key, then encrypt-then-MAC on every frame.

Both sides hash the two HELLO bodies into a transcript.  Each proves it holds the device key with
HMAC(key, label || transcript); the session keys come from the same key and transcript, so they are new
for every pair of nonces and a frame recorded in an earlier session never verifies again.  A secured
frame is  header (FLAG_SECURE set) | counter u32 | AES-CTR(body) | MAC[:8]  with the MAC over all that
precedes it.  Counters increase per direction; a sliding 64-frame window drops replays but accepts a
frame the link reordered.  See protocol/SPEC.md, "Link protocol", section "Security".
"""

import hashlib
import struct

from protocol import crypto, link

ROLE_TERMINAL = 0
ROLE_HOST = 1

CTR_SIZE = 4
MAC_SIZE = 8
OVERHEAD = CTR_SIZE + MAC_SIZE
REPLAY_WINDOW = 64
KEY_SIZE = 32


def transcript(hello_terminal, hello_host):
    """SHA-256 over both HELLO bodies: binds nonces, ids, windows and capabilities into the keys."""
    h = hashlib.sha256(bytes(hello_terminal))
    h.update(bytes(hello_host))
    return h.digest()


def proof(device_key, role, th, seq_high=0):
    """The AUTH proof of `role` for transcript `th`.  The host's also covers `seq_high` (the highest
    record sequence number it holds for the terminal, sent in its AUTH), so nobody can alter it."""
    if role == ROLE_TERMINAL:
        return crypto.hmac_sha256(device_key, b"zf1 auth terminal" + th)
    return crypto.hmac_sha256(device_key, b"zf1 auth host" + th + struct.pack("<I", seq_high))


class Session:
    """Seals outgoing and opens incoming payloads of one authenticated session."""

    def __init__(self, device_key, role, th):
        master = crypto.derive(device_key, b"zf1 session" + th, 32)
        t2h = (crypto.derive(master, b"t2h enc", 16), crypto.derive(master, b"t2h mac", 32))
        h2t = (crypto.derive(master, b"h2t enc", 16), crypto.derive(master, b"h2t mac", 32))
        self._tx_enc, self._tx_mac = t2h if role == ROLE_TERMINAL else h2t
        self._rx_enc, self._rx_mac = h2t if role == ROLE_TERMINAL else t2h
        self.tx_counter = 0
        self.rx_top = 0  # highest counter accepted
        self._rx_seen = 0  # bit i: counter rx_top - i accepted
        self._nonce = bytearray(12)
        self._ks = bytearray(0)  # AES-CTR keystream scratch, grown to the largest payload seen
        self.mac_errors = 0
        self.replays = 0

    def _nonce_for(self, counter):
        struct.pack_into("<I", self._nonce, 0, counter)
        return self._nonce

    def _ctr(self, key, counter, data, out):
        """AES-CTR of `data` into `out` with this session's scratch keystream (no garbage per frame)."""
        need = (len(data) + 15) & ~15
        if len(self._ks) < need:
            self._ks = bytearray(need)
        crypto.aes_ctr_into(key, self._nonce_for(counter), data, out, self._ks)

    def seal(self, payload):
        """A clear payload (header + body) as the secured payload sent on the wire."""
        out = bytearray(len(payload) + OVERHEAD)
        self.seal_into(payload, out)
        return bytes(out)

    def seal_into(self, payload, out):
        """seal(payload) written into the bytearray `out` (at least len(payload) + OVERHEAD bytes); the
        length written.  `payload` must not overlap `out`."""
        mtype, flags, seq, ack, sack, hs = link.unpack_header(payload)
        self.tx_counter += 1
        n = len(payload) + OVERHEAD
        link.pack_header(out, mtype, flags | link.FLAG_SECURE, seq, ack, sack)
        struct.pack_into("<I", out, hs, self.tx_counter)
        end = len(payload) + CTR_SIZE
        mv = memoryview(out)
        self._ctr(self._tx_enc, self.tx_counter, memoryview(payload)[hs:], mv[hs + CTR_SIZE:end])
        mv[end:n] = crypto.hmac_sha256(self._tx_mac, mv[:end])[:MAC_SIZE]
        return n

    def open(self, payload):
        """The clear payload of a secured one, or None (counted) if it is altered, forged or replayed.
        Raises LinkError only for a payload that is not a secured v1 frame at all."""
        mtype, flags, seq, ack, sack, hs = link.unpack_header(payload)
        if not flags & link.FLAG_SECURE:
            raise link.LinkError(link.E_NOT_AUTHENTICATED, "clear frame inside an authenticated session")
        end = len(payload) - MAC_SIZE
        if end < hs + CTR_SIZE:
            self.mac_errors += 1
            return None
        mv = memoryview(payload)
        if not crypto.equal(crypto.hmac_sha256(self._rx_mac, mv[:end])[:MAC_SIZE], mv[end:]):
            self.mac_errors += 1
            return None
        (counter,) = struct.unpack_from("<I", payload, hs)
        if not self._fresh(counter):
            self.replays += 1
            return None
        out = bytearray(end - CTR_SIZE)
        link.pack_header(out, mtype, flags & ~link.FLAG_SECURE, seq, ack, sack)
        self._ctr(self._rx_enc, counter, mv[hs + CTR_SIZE:end], memoryview(out)[hs:])
        return bytes(out)

    def _fresh(self, counter):
        """Accept each counter once; counters more than REPLAY_WINDOW behind the newest are stale."""
        if counter == 0:
            return False
        if counter > self.rx_top:
            shift = counter - self.rx_top
            self._rx_seen = ((self._rx_seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) if shift < REPLAY_WINDOW \
                else 1
            self.rx_top = counter
            return True
        back = self.rx_top - counter
        if back >= REPLAY_WINDOW or self._rx_seen & (1 << back):
            return False
        self._rx_seen |= 1 << back
        return True
