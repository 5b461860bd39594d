"""The phone wallet emulator: a fresh code per payment (ATC one higher, a new unpredictable number) that a
terminal accepts as a new payment, the same code shown twice is ALREADY PAID, and only the genuine codes
carry the cryptogram the profile's issuer keys compute."""

import pytest

from firmware import decision
from host_sim import issuers
from host_sim.emulators import wallet
from protocol import cpm, crypto


def test_each_payment_gets_a_fresh_code_the_terminal_takes_as_new():
    phone = wallet.Wallet("unionpay-hce", atc=41)
    codes = [phone.show() for _ in range(3)]
    tags = [cpm.payment_data(cpm.decode(c)) for c in codes]
    assert [t[0x9F36] for t in tags] == [b"\x00\x2a", b"\x00\x2b", b"\x00\x2c"]
    assert len({t[0x9F37] for t in tags}) == 3 and len({t[0x9F26] for t in tags}) == 3
    d = decision.Decider(bytes(16), sealer=lambda p, a: crypto.seal(bytes(32), bytes(12), p, a))
    outcomes = []
    for seq, text in enumerate(codes + codes[:1], 1):
        r = d.decide(text, 1796083200)
        if r.outcome == decision.ACCEPT:
            d.remember(r.token, r.atc, seq)
        outcomes.append(r.outcome)
    assert outcomes == [decision.ACCEPT] * 3 + [decision.ALREADY_PAID]


@pytest.mark.parametrize("profile", sorted(wallet.ACCOUNTS))
def test_genuine_codes_carry_the_issuers_cryptogram_and_forged_ones_do_not(profile):
    pan, psn, _ = wallet.ACCOUNTS[profile]
    for forge in (False, True):
        tags = cpm.payment_data(cpm.decode(wallet.code(profile, atc=9, forge=forge)))
        assert issuers.profile_for(pan) == profile
        assert issuers.verify_cryptogram(profile, pan, psn, tags) is not forge
        assert cpm.check(tags, 1796083200) == 0  # a forgery passes every offline check


def test_an_unknown_profile_is_refused_and_qr_make_offers_every_profile():
    from host_sim.tools import qr

    with pytest.raises(ValueError, match="unknown profile"):
        wallet.code("amex")
    assert sorted(qr.CPM_PROFILES) == sorted(wallet.ACCOUNTS)
