"""Fleet-wide tokens on the host: a decline from terminal A's upload is in the deny-list delta of every
terminal; `acquirer --allow TOKEN` takes a card off (a removal in the next delta, both kept in the
deny_events table with time and reason); the current token key is offered to a terminal that lacks it,
sealed so only that terminal opens it; `tokens rotate` re-lists denied cards under the new key from
the card numbers the host can open and retires entries of keys no terminal holds; `tokens show --pan`
gives a card's token under every key."""

import json
import types

from firmware import decision
from host_sim.backend import acquirer, backoffice, host_session
from host_sim.backend import tokens as host_tokens
from protocol import bundle, fleet, record, tokenkey, tokens
from tests.host_sim.helpers import KEY, TERMINAL, ListeningTerminal, card_read, open_for_test, registered, seal_for_test

OTHER = b"VB\x00\x00\x02\x00\x00\x00"


def card_record(store, seq, card, terminal=TERMINAL, key=None):
    """The record a terminal holding the store's current token key (or `key`) writes for a contactless read."""
    d = decision.Decider(key or store.token_key(), sealer=seal_for_test).decide_emv(card)
    raw = record.encode(terminal, seq, 1_800_000_000, d.kind, d.amount, 156, record.ACCEPTED, 0, 1, d.token,
                        d.extensions)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def test_a_decline_seen_on_one_terminal_is_in_every_terminals_delta(tmp_path):
    store = registered(tmp_path)
    store.register(OTHER.hex(), bytes(32))
    office = backoffice.Backoffice(store, acquirer.Acquirer({"decline_atcs": [5]}), opener=open_for_test)
    card = card_read("visa", atc=5)
    on_a = card_record(store, 1, card)
    store.store([on_a])
    office.authorise_pending()
    assert office.deny_delta(TERMINAL.hex()) == office.deny_delta(OTHER.hex()) == (0, 1, [on_a["token"]], [])
    # terminal B computes the same token for the same card: it is refused there
    assert card_record(store, 9, card_read("visa", atc=6), terminal=OTHER)["token"] == on_a["token"]
    assert store.denied() == [(on_a["token"], 1, "card blocked by issuer", on_a["token"])]


def test_allow_takes_a_card_off_and_the_delta_carries_the_removal(tmp_path, capsys):
    store = registered(tmp_path)
    bad, other = bytes([0xBB]) * 16, bytes([0xCC]) * 16
    store.deny(bad, "card blocked by issuer", 1)
    store.deny(other, "over limit", 1)
    store.set_delivered(TERMINAL.hex(), bundle.KIND_DENY, 2)  # the terminal holds both
    args = types.SimpleNamespace(db=str(tmp_path / "c.db"), allow=[bad.hex(), bytes(16).hex()], why="issuer says ok",
                                 rules=None, acquirer=None)
    assert acquirer.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"allowed": [bad.hex()], "not_listed": [bytes(16).hex()], "deny_list_version": 3}
    office = backoffice.Backoffice(store)
    assert office.deny_delta(TERMINAL.hex()) == (2, 3, [], [bad])
    assert office.deny_delta("fresh terminal") == (0, 3, [other], [bad])  # removing what it lacks is harmless
    events = [(v, t, a, r) for v, t, _, a, r, _ in store.deny_events()]
    assert events == [(3, bad, "remove", "issuer says ok"), (2, other, "add", "over limit"),
                      (1, bad, "add", "card blocked by issuer")]
    # declined again later: listed again, as a new version
    assert store.deny(bad, "card blocked by issuer", 1) == 4 and office.deny_delta(TERMINAL.hex()) == (2, 4, [bad], [])
    assert acquirer.main(types.SimpleNamespace(db=args.db, allow=["zz"], why="x", rules=None, acquirer=None)) == 2


def test_the_current_token_key_is_offered_sealed_to_a_terminal_without_it(tmp_path):
    store = registered(tmp_path, token_key=False)
    t = ListeningTerminal(host_session.Session(store, backoffice=backoffice.Backoffice(store))).pump()
    [offer] = t.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_TOKEN_KEY, 1)
    assert bundle.verify(bundle.config_key(KEY), offer["kind"], 1, offer["size"], offer["digest"], offer["signature"])
    t.answer(1, 0, kind=fleet.KIND_TOKEN_KEY)
    data = b"".join(c["data"] for c in t.take("CONFIG_CHUNK"))
    assert tokenkey.open_bundle(KEY, data) == store.token_key()
    assert store.token_key()[1] not in data
    t.answer(1, len(data), kind=fleet.KIND_TOKEN_KEY)
    assert store.delivered_version(TERMINAL.hex(), fleet.KIND_TOKEN_KEY) == 1
    assert t.take("CONFIG_OFFER") == []
    v2 = host_tokens.rotate(store)["version"]
    t2 = ListeningTerminal(host_session.Session(store, backoffice=backoffice.Backoffice(store))).pump()
    [offer] = t2.take("CONFIG_OFFER")
    assert (offer["kind"], offer["version"]) == (fleet.KIND_TOKEN_KEY, v2)


def test_rotation_re_lists_denied_cards_under_the_new_key_and_retires_unused_keys(tmp_path):
    store = registered(tmp_path)  # TERMINAL holds key 1
    v1, key1 = store.token_key()
    card = card_read("unionpay-card", atc=5)
    rec = card_record(store, 1, card)
    store.store([rec])
    store.deny(rec["token"], "card blocked by issuer", acquirer.key_version(rec))
    opaque = bytes([0xAA]) * 16  # a card whose number the host cannot open
    store.deny(opaque, "over limit", v1)
    got = host_tokens.rotate(store, opener=open_for_test)
    v2, key2 = store.token_key()
    assert got == {"version": v2, "reissued": 1, "unrecoverable": 1, "retired": 0, "deny_list_version": 3}
    under_v2 = tokens.token(key2, card["pan"])
    assert sorted(d[:3] for d in store.denied()) == sorted([
        (rec["token"], v1, "card blocked by issuer"), (opaque, v1, "over limit"),
        (under_v2, v2, "re-issued under token key v2: card blocked by issuer")])
    # a terminal under the new key makes the re-listed token
    assert card_record(store, 2, card_read("unionpay-card", atc=6), key=(v2, key2))["token"] == under_v2
    shown = host_tokens.show(store, pan=card["pan"])
    assert shown["tokens"] == {str(v1): rec["token"].hex(), str(v2): under_v2.hex()}
    assert shown["current"] == v2 and shown["deny_list"]["listed_by_key"] == {str(v1): 2, str(v2): 1}
    # every terminal moved to v2: the next rotation drops the v1 entries (removals) and re-lists under v3
    store.set_delivered(TERMINAL.hex(), fleet.KIND_TOKEN_KEY, v2)
    got = host_tokens.rotate(store, opener=open_for_test)
    assert (got["retired"], got["reissued"], got["unrecoverable"]) == (2, 1, 1)  # the opaque card is dropped
    assert {kv for _, kv, _, _ in store.denied()} == {v2, v2 + 1}
    assert {d[2] for d in store.denied()} == {"re-issued under token key v2: card blocked by issuer",
                                              "re-issued under token key v3: card blocked by issuer"}


def test_tokens_command_shows_and_rotates(tmp_path, capsys):
    store = registered(tmp_path)
    store.close()
    db = str(tmp_path / "c.db")
    assert host_tokens.main(types.SimpleNamespace(db=db, action="show", pan="6212345678901234")) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["current"] == 1 and shown["keys"] == [{"version": 1, "terminals": 1}] and set(shown["tokens"]) == {"1"}
    assert host_tokens.main(types.SimpleNamespace(db=db, action="rotate", pan=None)) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
