"""The fleet token key on the terminal, on both runtimes: config kind 4 staged, opened under the device
key, kept in /flash/keys/token and handed to the Decider at once (the next tap is tokenised under it
and names its version); a bundle sealed for another device, a mismatched version or a downgrade is
refused and changes nothing; a terminal with no key declines payment taps (REASON_NO_TOKEN_KEY) but
still admits tickets.  Also a deny-list delta whose removals re-enable a card, through the receiver."""

import hashlib
import hmac

from protocol import bundle, cpm, fleet, record, tokenkey

DEVICE = bytes(range(32))
OTHER_DEVICE = bytes(range(1, 33))
KEY1, KEY2 = bytes([1]) * 32, bytes([2]) * 32
PAN = "6212345678901232"  # Luhn-valid


def body_token_key(root, device_key, steps, line):
    """Run offer/chunk steps for kind 4; after each, the held key version and one tap's outcome."""
    from firmware import decision, denylist, identity
    from firmware.config import receiver
    from protocol import crypto, record

    def sealer(plaintext, token):
        return crypto.seal(bytes(32), bytes(12), plaintext, token)

    d = decision.Decider(identity.token_key(root), sealer=sealer)

    def on_activate(kind, content):
        d.use(kind, content)

    r = receiver.ConfigReceiver(root, denylist.DenyList(root + "/config/deny.bin"), device_key, on_activate)
    out = []
    for kind, msg in steps:
        try:
            if kind == "offer":
                reply = list(r.on_offer(msg))
            else:
                reply = list(r.on_chunk(msg)[1] or [])
        except receiver.Refused as e:
            reply = "refused: " + str(e)
        held = identity.token_key(root)
        t = d.decide(line)
        ext = dict(t.extensions) if t.outcome == decision.ACCEPT else {}
        out.append([reply, held[0] if held else 0, t.outcome, t.reason, t.token,
                    ext.get(record.EXT_TOKEN_KEY)])
    rebooted = decision.Decider(identity.token_key(root), sealer=sealer).decide(line)  # what a reboot reads back
    return out, rebooted.token


def offer(data, version, device=DEVICE, kind=fleet.KIND_TOKEN_KEY):
    digest = hashlib.sha256(data).digest()
    sig = bundle.signature(bundle.config_key(device), kind, version, len(data), digest)
    return {"kind": kind, "version": version, "size": len(data), "digest": digest, "signature": sig}


def chunk(data, version, kind=fleet.KIND_TOKEN_KEY):
    return {"kind": kind, "version": version, "offset": 0, "data": data}


def token(key):
    return hmac.new(key, PAN.encode(), hashlib.sha256).digest()[:16]


def test_a_terminal_without_a_key_declines_then_takes_the_delivered_key(runtime, tmp_path):
    line = cpm.encode(PAN, atc=3)
    v1 = tokenkey.make(DEVICE, 1, KEY1, bytes(12))
    v2 = tokenkey.make(DEVICE, 2, KEY2, bytes(range(12)))
    foreign = tokenkey.make(OTHER_DEVICE, 3, KEY2, bytes(12))  # sealed for another terminal
    steps = [("offer", offer(v1, 1)), ("chunk", chunk(v1, 1)),
             ("offer", offer(foreign, 3)), ("chunk", chunk(foreign, 3)),
             ("offer", offer(v2, 2)), ("chunk", chunk(v2, 2)),
             ("offer", offer(v1, 1))]  # a downgrade
    out, rebooted = runtime.run(body_token_key, str(tmp_path), DEVICE, steps, line)
    # before: no key, the tap declines with its own reason and no token
    assert out[0][0] == [4, 1, 0] and out[0][1:4] == [0, 2, record.REASON_NO_TOKEN_KEY]
    assert out[1] == [[4, 1, len(v1)], 1, 1, 0, token(KEY1), b"\x01\x00\x00\x00"]
    assert out[3][0].startswith("refused") and out[3][1] == 1 and out[3][4] == token(KEY1)
    assert out[5] == [[4, 2, len(v2)], 2, 1, 0, token(KEY2), b"\x02\x00\x00\x00"]
    assert out[6][0].startswith("refused: downgrade") and out[6][1] == 2
    assert rebooted == token(KEY2)


def test_a_bundle_whose_inner_version_differs_from_the_offer_is_refused(runtime, tmp_path):
    v5 = tokenkey.make(DEVICE, 5, KEY1, bytes(12))
    steps = [("offer", offer(v5, 4)), ("chunk", chunk(v5, 4))]
    out, _ = runtime.run(body_token_key, str(tmp_path), DEVICE, steps, cpm.encode(PAN))
    assert out[1][0].startswith("refused") and out[1][1] == 0 and out[1][3] == record.REASON_NO_TOKEN_KEY


def body_removals(root, device_key, key, deltas, line):
    """Apply deny-list deltas through the receiver; after each, whether `line` is refused."""
    from firmware import decision, denylist
    from firmware.config import receiver
    from protocol import crypto

    deny = denylist.DenyList(root + "/config/deny.bin")
    r = receiver.ConfigReceiver(root, deny, device_key)
    d = decision.Decider(key, deny=deny, sealer=lambda plaintext, token: crypto.seal(bytes(32), bytes(12), plaintext,
                                                                                       token))
    out = []
    for o, c in deltas:
        r.on_offer(o)
        r.on_chunk(c)
        t = d.decide(line)
        out.append([deny.version, deny.count, t.reason])
    return out


def test_a_removal_re_enables_a_card(runtime, tmp_path):
    bad = hmac.new(KEY1, PAN.encode(), hashlib.sha256).digest()[:16]
    other = bytes([7]) * 16
    add = bundle.deny_delta(0, 1, [bad, other])
    remove = bundle.deny_delta(1, 2, [], [bad])
    deltas = [(offer(add, 1, kind=bundle.KIND_DENY), chunk(add, 1, bundle.KIND_DENY)),
              (offer(remove, 2, kind=bundle.KIND_DENY), chunk(remove, 2, bundle.KIND_DENY))]
    got = runtime.run(body_removals, str(tmp_path), DEVICE, KEY1, deltas, cpm.encode(PAN, atc=1))
    assert got == [[1, 2, record.REASON_DENY_LISTED], [2, 1, record.REASON_NONE]]


def body_ticket_without_key(keyline, text, now):
    from firmware import decision
    from protocol import ticket

    ring = ticket.Keyring()
    ring.load_line(keyline)
    t = decision.Decider(None, keyring=ring).decide(text, now)
    return t.outcome, t.reason, t.token


def test_tickets_need_no_token_key(runtime):
    from host_sim.tools import tickets

    key = tickets.generate_key()
    now = 1_800_000_000
    text = tickets.issue(key, 5, 1, b"TICKET01", valid_from=now - 60, valid_to=now + 3600)
    outcome, reason, tok = runtime.run(body_ticket_without_key, tickets.keyring_line(key, 5, 1), text, now)
    assert (outcome, reason) == (1, 0)
    assert tok == hashlib.sha256(b"zf ticket" + (5).to_bytes(2, "big") + b"TICKET01").digest()[:16]
