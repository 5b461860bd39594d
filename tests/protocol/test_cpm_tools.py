"""protocol/cpm_tools.py on both runtimes: the tools' summary of a code and the test-payload maker, whose
codes decode to what was put in (AIP and PAN sequence number included) and pass the terminal's checks."""


def body_make_and_read(pan, atc, psn):
    from protocol import cpm, cpm_tools

    text = cpm_tools.encode(pan, atc=atc, cryptogram=b"\x01" * 8, aip=b"\x00\x80", psn=psn)
    assert cpm.encode(pan, atc=atc, cryptogram=b"\x01" * 8, aip=b"\x00\x80", psn=psn) == text
    objects = cpm.decode(text)
    tags = cpm.payment_data(objects)
    return cpm_tools.fields(objects), cpm.check(tags, None), tags.get(0x82), tags.get(0x5F34)


def test_made_codes_read_back(runtime):
    fields, reason, aip, psn = runtime.run(body_make_and_read, "6228480000000000018", 513, b"\x01")
    assert fields == {"applications": [{"aid": "A000000333010101", "label": "UnionPay"}], "account_source": "57",
                      "expiry": "3012", "atc": 513, "cid": "80", "deferred": True}
    assert (reason, aip, psn) == (0, b"\x00\x80", b"\x01")
    fields, _, _, psn = runtime.run(body_make_and_read, "6228480000000000018", 1, None)
    assert psn is None and fields["atc"] == 1
