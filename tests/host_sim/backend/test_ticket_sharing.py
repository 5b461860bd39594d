"""Used tickets shared through the host: the acquirer pass lists the token of a ticket whose last
admission a gate journalled, so the other gates of the group refuse it ("used at other gate"); a ticket
with admissions left, or an unlimited one, is not listed."""

import struct

from host_sim.backend import acquirer
from host_sim.backend.store import Store
from protocol import record

TERMINAL = bytes.fromhex("5642000001000000")


def ticket_record(seq, token, used, allowed):
    ext = [(record.EXT_ADMISSION, struct.pack(">HHBBH", used, used, 1, 1, allowed))]
    raw = record.encode(TERMINAL, seq, 1_800_000_000 + seq, record.KIND_TICKET, 0, 156, record.ACCEPTED, 0, 2,
                        token, ext)
    rec = record.decode(raw)
    rec["raw"] = raw
    return rec


def test_the_last_admission_of_a_ticket_lists_it(tmp_path):
    store = Store(str(tmp_path / "c.db"))
    single, party, unlimited = b"S" * 16, b"P" * 16, b"U" * 16
    store.store([ticket_record(1, single, 1, 1), ticket_record(2, party, 1, 4), ticket_record(3, unlimited, 5, 0),
                 ticket_record(4, party, 4, 4)])
    result = acquirer.run_pass(store, None)
    assert result.approved == 4 and not result.error
    why = "ticket used up at terminal %s" % TERMINAL.hex()
    assert [(t, r) for t, _, r, _ in store.denied()] == [(single, why), (party, why)]
    store.close()
