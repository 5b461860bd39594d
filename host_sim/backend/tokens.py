"""`python -m host_sim tokens show|rotate --db DB`: the fleet token key (protocol/tokens.py) on the host.

The collector keeps every token key version (table token_keys; the current one is the newest) and
delivers the current one to each terminal, sealed to it, as config kind 4.  A record says which
version its token was made under (record.EXT_TOKEN_KEY), and so does each deny-list entry.

Rotation makes a new version.  Until every terminal holds it, terminals still tokenise under older
keys, so the deny list keeps an entry per card under every version in use:
  - for each listed card, the host recomputes its token under the new key from the card number it can
    open in the card's stored records (the sealed card data, host_sim/backend/card_data.py; a
    re-listed entry remembers the token those records carry) and lists it; a card whose number it
    cannot open keeps only its old-key entry (refused on terminals still under that key, and declined
    by its issuer again at its next upload elsewhere);
  - entries made under a version no terminal holds any more (table config_delivered) and that is not
    current are removed, as deny-list removals, after their card was re-listed.
`show --pan PAN` prints a card's token under every version, e.g. for `acquirer --allow TOKEN`.
"""

import json
import sys

from host_sim.backend import card_data
from host_sim.backend.store import Store
from protocol import fleet, record, tlv
from protocol import tokens as tokenfmt


def _digits(value, stop):
    text = bytes(value).hex().upper()
    return text.split(stop, 1)[0] if stop in text else text.rstrip("F")


def card_number(store, token, opener=None):
    """The card number behind `token`, from the sealed data of a stored record carrying it; None if none opens."""
    for _, raw in store.records_with_token(token):
        try:
            tags = card_data.card_data(store, record.decode(raw), opener)
        except (card_data.CardDataUnavailable, tlv.TlvError, record.RecordError):
            continue
        if tags and tags.get(0x5A):
            return _digits(tags[0x5A], "F")
        if tags and tags.get(0x57):
            return _digits(tags[0x57], "D")
    return None


def versions_in_use(store):
    """Token key versions some terminal holds, and the current one."""
    current = store.token_key()[0]
    return {v for v in store.token_key_holders(fleet.KIND_TOKEN_KEY) if v} | {current}


def rotate(store, opener=None):
    """A new token key; deny entries re-issued under it where the card number opens, dead versions dropped."""
    version, key = store.rotate_token_key()
    reissued = unrecoverable = retired = 0
    in_use = versions_in_use(store)
    relisted = set()
    for token, key_version, reason, origin in store.denied():
        if key_version != version and origin not in relisted:
            pan = card_number(store, origin, opener)
            if pan is None:
                unrecoverable += 1
            else:
                relisted.add(origin)
                if store.deny(tokenfmt.token(key, pan), "re-issued under token key v%d: %s"
                              % (version, reason.split(": ", 1)[-1]), version, origin):
                    reissued += 1
        if key_version is not None and key_version not in in_use:
            store.allow(token, "token key v%d retired" % key_version)
            retired += 1
    return {"version": version, "reissued": reissued, "unrecoverable": unrecoverable, "retired": retired,
            "deny_list_version": store.deny_list_version()}


def show(store, pan=None, events=20):
    """What an operator needs: key versions and who holds them, the deny list by version, recent changes."""
    current = store.token_key()[0]
    holders = store.token_key_holders(fleet.KIND_TOKEN_KEY)
    keys = store.token_keys()
    listed = {}
    for _, key_version, _, _ in store.denied():
        listed[str(key_version)] = listed.get(str(key_version), 0) + 1
    out = {"current": current,
           "keys": [{"version": v, "terminals": holders.get(v, 0)} for v in sorted(keys)],
           "deny_list": {"version": store.deny_list_version(), "listed_by_key": listed},
           "events": [{"version": v, "token": t.hex(), "key_version": kv, "action": a, "reason": r}
                      for v, t, kv, a, r, _ in store.deny_events(events)]}
    if pan is not None:
        out["tokens"] = {str(v): tokenfmt.token(k, pan).hex() for v, k in sorted(keys.items())}
    return out


def main(args):
    store = Store(args.db)
    try:
        out = rotate(store) if args.action == "rotate" else show(store, args.pan)
    finally:
        store.close()
    json.dump(out, sys.stdout)
    print()
    return 0


def add_arguments(parser):
    parser.add_argument("action", choices=("show", "rotate"), help="show the keys and deny list, or rotate the key")
    parser.add_argument("--db", required=True, help="the collector's SQLite database")
    parser.add_argument("--pan", help="show: also print this card number's token under every key version")
