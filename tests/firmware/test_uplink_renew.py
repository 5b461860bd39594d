"""ERROR 6 NOT_AUTHENTICATED (the host lost the session, e.g. it restarted): the terminal's Peer drops its
session and the uplink starts a new handshake at once, not after its stall timeout (SPEC section 4,
"When each ERROR is sent").  Any other clear ERROR while the session is up changes nothing."""

from firmware import uplink
from protocol import link, peer


class _Uplink:
    _since = 0
    _heard = 0


def up_peer():
    key = bytes(32)
    t = peer.Peer(peer.ROLE_TERMINAL, b"ZF000009", key, "fw")
    h = peer.Peer(peer.ROLE_HOST, b"HOST0001", lambda tid: key, "host")
    t.start(0)
    for _ in range(4):
        for src, dst in ((t, h), (h, t)):
            p = src.poll(0)
            if p is not None:
                dst.feed(p, 0)
    assert t.up()
    return t


def test_error_6_in_the_clear_renews_the_session_at_once():
    t = up_peer()
    t.feed(link.encode(link.ERROR, link.error(link.E_NOT_AUTHENTICATED, "no session")), 10)
    assert t.renew and t.state == peer.IDLE and t.session is None
    assert uplink.Uplink._stalled(_Uplink(), t, 20)  # 20 ms in, far below RETRY_MS


def test_another_clear_error_does_not_end_the_session():
    t = up_peer()
    t.feed(link.encode(link.ERROR, link.error(link.E_AUTH_FAILED, "forged")), 10)
    assert t.up() and not t.renew
    assert not uplink.Uplink._stalled(_Uplink(), t, 20)



def test_a_long_quiet_spell_is_not_silence():
    """An idle hour (nothing waiting for an answer) is not a dead link: the uplink checks before it sends,
    and the first frame after the hour gets LINK_TIMEOUT_MS to be answered before the session is given up."""
    t = up_peer()
    u = _Uplink()
    hour = 3600 * 1000
    assert not uplink.Uplink._stalled(u, t, 1000)
    assert not uplink.Uplink._stalled(u, t, hour)  # the check after the quiet hour, nothing in flight
    assert t.send(link.STATUS, b"", 0) is not None
    assert t.sender.in_flight() == 1
    assert not uplink.Uplink._stalled(u, t, hour + uplink.LINK_TIMEOUT_MS - 1)
    assert uplink.Uplink._stalled(u, t, hour + uplink.LINK_TIMEOUT_MS)


def test_frames_waiting_unanswered_stall_the_session():
    t = up_peer()
    u = _Uplink()
    assert not uplink.Uplink._stalled(u, t, 1000)
    t.send(link.STATUS, b"", 0)
    assert not uplink.Uplink._stalled(u, t, 5000)
    assert uplink.Uplink._stalled(u, t, 1000 + uplink.LINK_TIMEOUT_MS)
