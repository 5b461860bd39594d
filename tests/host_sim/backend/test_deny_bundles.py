"""The collector's deny-list deltas of any size: at most BUNDLE_TOKENS tokens a bundle, each ending at
the version of its last change, the next one continuing from there until the terminal is current; each
bundle in the sorted "ZDD2" format a terminal streams from flash."""

from host_sim.backend import backoffice
from protocol import bundle
from tests.host_sim.helpers import TERMINAL, registered


def tok(i):
    return i.to_bytes(4, "big") * 4


def test_a_long_delta_goes_out_as_several_sorted_bundles(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "BUNDLE_TOKENS", 4)
    store = registered(tmp_path)
    office = backoffice.Backoffice(store)
    for i in (9, 3, 7, 1, 8, 2):
        store.deny(tok(i), "declined", 1)
    store.allow(tok(3), "the issuer re-enabled it")
    terminal = TERMINAL.hex()
    sent = []
    while True:
        delta = office.deny_delta(terminal)
        if delta is None:
            break
        base, version, added, removed = delta
        data = bundle.deny_delta(base, version, added, removed)
        assert bundle.ordered(data) and bundle.deny_head(data[:bundle.HEAD], len(data)) == (
            base, version, len(added), len(removed))
        assert data[bundle.HEAD:] == b"".join(sorted(added)) + b"".join(sorted(removed))
        sent.append((base, version, sorted(added), sorted(removed)))
        office.delivered(terminal, bundle.KIND_DENY, version)
    assert [(b, v) for b, v, _, _ in sent] == [(0, 5), (5, 7)]
    assert sent[0][2] == [tok(1), tok(7), tok(8), tok(9)]  # the first four changes, tok(3)'s newest is later
    assert sent[1][2:] == ([tok(2)], [tok(3)])
