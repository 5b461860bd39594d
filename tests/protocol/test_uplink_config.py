"""protocol/uplink_config.py on both runtimes: the configs the firmware takes as meant pass, each mistake is
named."""

GOOD = [
    {"link": "serial"},
    {"link": "serial", "online_deadline_ms": 200, "offline_policy": "defer", "defer_cap_fen": 500},
    {"link": "modem", "dialect": "quectel", "host": "10.1.2.3", "port": 7000},
    {"link": "modem", "dialect": "simcom", "host": "collector", "port": 65535, "apn": "cmnet",
     "online_deadline_ms": 10000},
]
BAD = [
    ([1, 2], "wants a JSON object"),
    ({"link": "serial", "speed": 9600}, "unknown key"),
    ({"link": "serial", "online_deadline_ms": 199}, "online_deadline_ms"),
    ({"link": "serial", "online_deadline_ms": True}, "online_deadline_ms"),
    ({"link": "serial", "offline_policy": "accept"}, "offline_policy"),
    ({"link": "serial", "defer_cap_fen": -1}, "defer_cap_fen"),
    ({"link": "serial", "host": "x"}, "serial link takes no host"),
    ({"link": "wifi"}, '"link" must be'),
    ({}, '"link" must be'),
    ({"link": "modem", "dialect": "huawei", "host": "h", "port": 1}, '"dialect" must be'),
    ({"link": "modem", "dialect": "simcom", "host": "", "port": 1}, '"host" must be'),
    ({"link": "modem", "dialect": "simcom", "host": "h", "port": 0}, '"port" must be'),
    ({"link": "modem", "dialect": "simcom", "host": "h", "port": 1.5}, '"port" must be'),
    ({"link": "modem", "dialect": "simcom", "host": "h", "port": 1, "apn": 3}, '"apn" must be'),
]


def body_problems(configs):
    from protocol import uplink_config

    return [uplink_config.problem(c) for c in configs]


def test_good_configs_pass_and_each_mistake_is_named(runtime):
    got = runtime.run(body_problems, GOOD + [c for c, _ in BAD])
    assert got[:len(GOOD)] == [None] * len(GOOD)
    for (cfg, why), problem in zip(BAD, got[len(GOOD):]):
        assert problem is not None and why in problem, (cfg, problem)



def test_the_firmware_reads_the_same_vocabulary():
    """The firmware keeps its own copies (it does not load this module: its heap is tight); they must agree."""
    from firmware import decision, transport, uplink
    from protocol import uplink_config

    assert (decision.POLICY_DECLINE, decision.POLICY_DEFER) == (uplink_config.POLICY_DECLINE,
                                                                uplink_config.POLICY_DEFER)
    assert (uplink.ONLINE_DEADLINE_MIN_MS, uplink.ONLINE_DEADLINE_MAX_MS) == (
        uplink_config.ONLINE_DEADLINE_MIN_MS, uplink_config.ONLINE_DEADLINE_MAX_MS)
    for dialect in uplink_config.DIALECTS:
        try:
            transport.modem_class(dialect)
        except ImportError:
            pass  # a known dialect: its driver is MicroPython code
    try:
        transport.modem_class("nokia")
    except ValueError as e:
        assert "unknown modem dialect" in str(e)
    else:
        raise AssertionError("an unknown dialect was taken")
