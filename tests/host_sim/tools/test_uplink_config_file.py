"""`provision --uplink FILE.json`: the uplink config is checked on the host, as the firmware reads it and stricter,
before the board is touched; a mistake is one line naming the file and what is wrong."""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import transport
from host_sim.tools import build, provision
from protocol import uplink_config

MODEM = {"link": "modem", "dialect": "simcom", "host": "collector.example", "port": 7000, "apn": "cmnet"}


def write(tmp_path, content):
    path = tmp_path / "uplink.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize("cfg", [
    MODEM,
    dict(MODEM, dialect="quectel", port=1),
    {"link": "modem", "dialect": "simcom", "host": "10.0.0.1", "port": 65535},  # apn optional
    {"link": "serial"},  # an explicit serial line: switches a terminal back
    # payment codes' settings, read from the same file on either link (protocol/SPEC.md)
    {"link": "serial", "online_deadline_ms": 200, "offline_policy": "defer", "defer_cap_fen": 500},
    dict(MODEM, online_deadline_ms=10000, offline_policy="decline", defer_cap_fen=0),
])
def test_a_good_file_is_written_as_checked(tmp_path, cfg):
    text = provision.read_uplink(write(tmp_path, cfg))
    assert json.loads(text) == cfg and text.endswith("\n") and "\n" not in text[:-1]


def test_every_dialect_the_firmware_knows_is_accepted(tmp_path):
    assert set(uplink_config.DIALECTS) == {"simcom", "quectel"}
    for dialect in uplink_config.DIALECTS:
        provision.read_uplink(write(tmp_path, dict(MODEM, dialect=dialect)))
    with pytest.raises(ValueError, match="unknown modem dialect"):  # what the firmware does at boot with another
        transport.modem_class("nokia")


@pytest.mark.parametrize("content,says", [
    ("", "is not valid JSON"),
    ("{'link': 'serial'}", "is not valid JSON"),
    ('{"link": "serial", "link": "modem"}', 'key "link" appears twice'),
    ("[1, 2]", "wants a JSON object"),
    ("null", "wants a JSON object"),
    ({}, '"link" must be "serial" or "modem", not null'),
    ({"link": "wifi"}, '"link" must be "serial" or "modem", not "wifi"'),
    ({"link": "serial", "port": 7000}, "a serial link takes no port"),
    (dict(MODEM, extra=1), 'unknown key "extra"'),
    (dict(MODEM, dialect="nokia"), '"dialect" must be one of "simcom", "quectel", not "nokia"'),
    ({k: v for k, v in MODEM.items() if k != "dialect"}, '"dialect" must be one of'),
    (dict(MODEM, host=""), '"host" must be a non-empty string'),
    (dict(MODEM, host=7), '"host" must be a non-empty string'),
    ({k: v for k, v in MODEM.items() if k != "host"}, '"host" must be a non-empty string, not null'),
    (dict(MODEM, port=0), '"port" must be an integer in 1..65535, not 0'),
    (dict(MODEM, port=65536), "not 65536"),
    (dict(MODEM, port="7000"), 'not "7000"'),
    (dict(MODEM, port=7000.0), "not 7000.0"),
    (dict(MODEM, port=True), "not true"),
    ('{"link": "modem", "dialect": "simcom", "host": "h", "port": NaN}', "not NaN"),
    (dict(MODEM, apn=None), '"apn" must be a string, not null'),
    ({"link": "serial", "online_deadline_ms": 199}, '"online_deadline_ms" must be an integer in 200..10000, not 199'),
    (dict(MODEM, online_deadline_ms=10001), "not 10001"),
    (dict(MODEM, offline_policy="accept"), '"offline_policy" must be "decline" or "defer", not "accept"'),
    (dict(MODEM, defer_cap_fen=-1), '"defer_cap_fen" must be an integer >= 0, not -1'),
    (dict(MODEM, defer_cap_fen=False), "not false"),
])
def test_each_bad_file_is_refused_with_its_reason(tmp_path, content, says):
    path = write(tmp_path, content)
    with pytest.raises(provision.ProvisionError) as e:
        provision.read_uplink(path)
    assert path in str(e.value) and says in str(e.value) and "\n" not in str(e.value)


def test_a_missing_or_undecodable_file_is_refused(tmp_path):
    with pytest.raises(provision.ProvisionError, match="cannot read .*nothing.json"):
        provision.read_uplink(str(tmp_path / "nothing.json"))
    (tmp_path / "latin.json").write_bytes(b'{"link": "modem", "host": "\xe9"}')
    with pytest.raises(provision.ProvisionError, match="latin.json is not valid JSON"):
        provision.read_uplink(str(tmp_path / "latin.json"))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                    max_leaves=12)
NEAR = st.fixed_dictionaries({}, optional={
    "link": st.sampled_from(["serial", "modem", "Modem", ""]) | JSON,
    "dialect": st.sampled_from(["simcom", "quectel", "SIMCOM"]) | JSON,
    "host": st.sampled_from(["h", ""]) | JSON,
    "port": st.integers(-2, 70000) | JSON,
    "apn": st.text(max_size=4) | JSON,
    "online_deadline_ms": st.integers(0, 20000) | JSON,
    "offline_policy": st.sampled_from(["decline", "defer"]) | JSON,
    "defer_cap_fen": st.integers(-2, 1000) | JSON})


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(JSON, NEAR), raw=st.binary(max_size=40))
def test_no_json_value_or_bytes_raise_anything_but_the_clean_error(tmp_path_factory, value, raw):
    folder = tmp_path_factory.mktemp("u")
    for data in (json.dumps(value).encode(), raw):
        (folder / "u.json").write_bytes(data)
        try:
            text = provision.read_uplink(str(folder / "u.json"))
        except provision.ProvisionError as e:
            assert "\n" not in str(e) and "u.json" in str(e)
            continue
        cfg = json.loads(text)
        assert cfg["link"] in ("serial", "modem") and set(cfg) <= set(uplink_config.KEYS)
        if cfg["link"] == "modem":
            assert cfg["dialect"] in uplink_config.DIALECTS and 0 < cfg["port"] <= 65535 and cfg["host"]


def test_provision_with_a_bad_file_is_one_line_and_touches_nothing(tmp_path):
    """The board's port does not exist: had the file not been refused first, provision would fail on it."""
    bad = write(tmp_path, dict(MODEM, dialect="nokia"))
    db = str(tmp_path / "c.db")
    proc = subprocess.run([sys.executable, "-m", "host_sim", "provision", "--port", str(tmp_path / "no-board"),
                           "--db", db, "--uplink", bad], cwd=build.ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines == ["provision failed: %s: \"dialect\" must be one of \"simcom\", \"quectel\", not \"nokia\"" % bad]
    assert not os.path.exists(db)  # the collector's database not even created


def test_the_uplink_file_is_verified_when_given():
    assert provision.UPLINK_PATH in provision.files_written(uplink="u.json")
    assert provision.UPLINK_PATH not in provision.files_written()
