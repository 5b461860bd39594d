"""The ISO 8583 layout (host_sim/backend/iso8583.py) reads real CUPS switch messages field for field and
writes them back byte for byte; our 0100 round-trips through pyiso8583; hostile bytes are a
MessageError, never another exception."""

import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_sim.backend import acquirer_link, iso8583
from tests.host_sim.helpers import card_read, contactless_record, open_for_test

REALWORLD = pathlib.Path(__file__).resolve().parents[3] / ".." / "shared" / "vectors" / "realworld" / "iso8583.json"


def cups_messages():
    if not REALWORLD.exists():
        return []
    return [m for m in json.loads(REALWORLD.read_text())["messages"] if m["variant"] == "cups_switch_ascii"]


@pytest.mark.skipif(not REALWORLD.exists(), reason="real-world vectors (../shared/vectors/realworld) not present")
@pytest.mark.parametrize("message", cups_messages(), ids=lambda m: m["name"])
def test_real_cups_messages_decode_field_by_field_and_encode_back(message):
    raw = bytes.fromhex(message["hex"])
    fields = iso8583.decode(raw)
    assert fields["t"] == message["mti"]
    for f in message["fields"]:
        if not isinstance(f["de"], int):
            continue
        key = str(f["de"])
        if "value" in f:
            assert fields[key] == f["value"], key
        elif key in ("52", "55"):
            assert fields[key] == f["raw_hex"].upper(), key
        if "tlv" in f:
            assert iso8583.icc_tags(fields[key]) == {int(t["tag"], 16): bytes.fromhex(t["value"]) for t in f["tlv"]}
    assert iso8583.encode(fields) == raw


def request():
    card = card_read("visa")
    rec = contactless_record(7, card)
    from host_sim.backend import card_data

    return rec, acquirer_link.request(rec, card_data.card_data(None, rec, open_for_test), 42, now=1_800_000_000)


def test_our_authorisation_request_round_trips_and_carries_the_field_map():
    rec, fields = request()
    raw = iso8583.encode(fields)
    back = iso8583.decode(raw)
    assert {k: v for k, v in back.items() if k not in ("p",)} == fields
    assert back["t"] == "0100" and back["2"] == "4761739001010010" and back["4"] == "000000000200"
    assert (back["11"], back["14"], back["22"], back["23"], back["49"]) == ("000042", "2712", "072", "001", "156")
    icc = iso8583.icc_tags(back["55"])
    assert {0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A, 0x84} <= set(icc)
    assert icc[0x9F02] == bytes.fromhex("000000000200") and icc[0x84] == bytes.fromhex("A0000000031010")
    assert iso8583.private_elements(back["48"]) == {"TI": rec["terminal"].hex().upper(), "SQ": "7",
                                                    "TK": rec["token"].hex(), "DA": "1"}
    framed = iso8583.framed(raw)
    assert int.from_bytes(framed[:2], "big") == len(raw) and framed[2:] == raw


def test_the_same_record_keeps_its_reference_on_every_attempt():
    rec, first = request()
    again = acquirer_link.request(rec, None, 43)
    assert first["37"] == again["37"] and first["11"] != again["11"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_a_message_error_or_a_message(data):
    try:
        fields = iso8583.decode(data)
    except iso8583.MessageError:
        return
    assert fields["t"].isdigit()


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255), st.integers(1, 40))
def test_damaged_requests_are_a_message_error_or_a_message(at, value, cut):
    raw = bytearray(iso8583.encode(request()[1]))
    raw[at % len(raw)] = value  # a flipped bitmap bit, a wrong length digit, a bad field byte ...
    for damaged in (bytes(raw), bytes(raw[:-cut])):  # ... and a truncated message
        try:
            iso8583.decode(damaged)
        except iso8583.MessageError:
            pass


@given(st.text(max_size=60))
def test_private_data_parses_or_refuses(text):
    try:
        elements = iso8583.private_elements(text)
    except iso8583.MessageError:
        return
    assert iso8583.private_data(elements) == text


def test_frame_lengths_outside_the_limit_are_refused():
    for header in (b"\x00\x00", (iso8583.MAX_MESSAGE + 1).to_bytes(2, "big"), b"\xff\xff"):
        with pytest.raises(iso8583.MessageError):
            iso8583.frame_length(header)
    assert iso8583.frame_length(b"\x01\x00") == 256
