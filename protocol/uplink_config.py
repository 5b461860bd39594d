"""/flash/config/uplink.json: the terminal's uplink and its payment-code settings, the one description the
firmware (firmware/uplink.py, transport.py, app.py) and `provision --uplink` share.

    {"link": "serial"|"modem", "dialect", "host", "port", "apn",       the modem's (link "modem" only)
     "online_deadline_ms", "offline_policy", "defer_cap_fen"}          payment codes, any link

The firmware reads it leniently (a bad value falls back to the serial line or the default, said on the
console); `problem()` is the strict check a tool makes before it writes the file.
"""

import json

DIALECTS = ("simcom", "quectel")  # the AT dialects firmware/transport.py modem_class knows
POLICY_DECLINE = "decline"  # link down: decline numeric payment codes with "network needed" (default)
POLICY_DEFER = "defer"  # link down: accept up to a per-code cap, code sealed, authorised later
ONLINE_DEADLINE_MIN_MS = 200  # the range of "online_deadline_ms"
ONLINE_DEADLINE_MAX_MS = 10000
MODEM_KEYS = ("dialect", "host", "port", "apn")
ONLINE_KEYS = ("online_deadline_ms", "offline_policy", "defer_cap_fen")
KEYS = ("link",) + MODEM_KEYS + ONLINE_KEYS


def _shown(value):
    return json.dumps(value)[:40]


def problem(cfg):
    """Why `cfg` (any JSON value) is not an uplink config the firmware takes as meant, or None."""
    if not isinstance(cfg, dict):
        return "wants a JSON object, not %s" % _shown(cfg)
    for k in cfg:
        if k not in KEYS:
            return "unknown key %s (keys: %s)" % (_shown(k), ", ".join(KEYS))
    deadline = cfg.get("online_deadline_ms", ONLINE_DEADLINE_MIN_MS)
    if type(deadline) is not int or not ONLINE_DEADLINE_MIN_MS <= deadline <= ONLINE_DEADLINE_MAX_MS:
        return '"online_deadline_ms" must be an integer in %d..%d, not %s' % (
            ONLINE_DEADLINE_MIN_MS, ONLINE_DEADLINE_MAX_MS, _shown(deadline))
    policy = cfg.get("offline_policy", POLICY_DECLINE)
    if policy not in (POLICY_DECLINE, POLICY_DEFER):
        return '"offline_policy" must be "%s" or "%s", not %s' % (POLICY_DECLINE, POLICY_DEFER, _shown(policy))
    cap = cfg.get("defer_cap_fen", 0)
    if type(cap) is not int or cap < 0:
        return '"defer_cap_fen" must be an integer >= 0, not %s' % _shown(cap)
    link = cfg.get("link")
    if link == "serial":
        for k in MODEM_KEYS:
            if k in cfg:
                return "a serial link takes no %s" % k
        return None
    if link != "modem":
        return '"link" must be "serial" or "modem", not %s' % _shown(link)
    if cfg.get("dialect") not in DIALECTS:
        return '"dialect" must be one of %s, not %s' % (", ".join('"%s"' % d for d in DIALECTS),
                                                       _shown(cfg.get("dialect")))
    host = cfg.get("host")
    if not isinstance(host, str) or not host:
        return '"host" must be a non-empty string, not %s' % _shown(host)
    port = cfg.get("port")
    if type(port) is not int or not 0 < port <= 65535:
        return '"port" must be an integer in 1..65535, not %s' % _shown(port)
    if not isinstance(cfg.get("apn", ""), str):
        return '"apn" must be a string, not %s' % _shown(cfg["apn"])
    return None
