"""protocol/refusal.py on both runtimes: every reason a REFUSED can carry has a distinct code and name,
and survives the REFUSED codec unchanged (the terminal stores the number, the host's report shows the name)."""


def body_reasons():
    from protocol import link, refusal

    codes = [refusal.CONFLICT, refusal.MALFORMED, refusal.WRONG_TERMINAL, refusal.UNSUPPORTED]
    entries = [(100 + i, code) for i, code in enumerate(codes)]
    msg = link.decode(link.encode(link.REFUSED, link.refused(entries), 1, 0, None, link.FLAG_SEQ))
    return codes, [refusal.NAMES[c] for c in codes], [(e["seq"], e["reason"]) for e in msg["refused"]]


def test_reasons_are_distinct_named_and_carried_by_refused(runtime):
    codes, names, refused = runtime.run(body_reasons)
    assert codes == [1, 2, 3, 4]
    assert names == ["conflict", "malformed", "wrong terminal", "unsupported"]
    assert len(set(names)) == 4
    assert [list(e) for e in refused] == [[100, 1], [101, 2], [102, 3], [103, 4]]
