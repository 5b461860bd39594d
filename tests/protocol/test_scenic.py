"""protocol/scenic.py on both runtimes: a ticket's admissions are entries x party, a party's people
follow each other freely, a new entry within the passback window is refused."""


def body_admit(cases):
    from protocol import scenic

    return [list(scenic.admit(*case)) + list(scenic.member(max(1, scenic.admit(*case)[1]), case[3]))
            for case in cases]


def test_admissions_party_and_passback(runtime):
    now = 1_800_000_000
    got = runtime.run(body_admit, [
        (0, 0, 1, 1, now, 600),  # first admission of a single ticket
        (1, now, 1, 1, now + 9999, 600),  # used up, whatever the time
        (3, now, 1, 4, now + 1, 600),  # the party's 4th person
        (4, now, 1, 4, now + 1, 600),  # a 5th: used up
        (1, now, 0, 1, now + 599, 600),  # unlimited: passback within the window
        (1, now, 0, 1, now + 600, 600),  # ... and admitted at its end
        (2, now, 0, 2, now + 5, 600),  # a pair's next entry too soon
        (1, now, 0, 1, now + 1, 0),  # no anti-passback configured
        (1, now, 0, 1, now - 5, 600),  # clock stepped back: still within the window
    ])
    ok, used_up, passback = 0, 1, 2
    assert got == [[ok, 1, 1, 1], [used_up, 1, 1, 1], [ok, 4, 1, 4], [used_up, 4, 1, 4], [passback, 1, 1, 1],
                   [ok, 2, 2, 1], [passback, 2, 1, 2], [ok, 2, 2, 1], [passback, 1, 1, 1]]
