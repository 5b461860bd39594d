"""Why a host refused a record: the reason codes of REFUSED (protocol/SPEC.md, Link protocol section 4,
"Per-record verdicts").  Apart from protocol/link.py, whose codec they fill, so that a terminal, which
only stores and shows the number, does not load them."""

CONFLICT = 1  # another record is held under this (terminal, seq)
MALFORMED = 2  # the record does not decode
WRONG_TERMINAL = 3  # the record names another terminal than the session's
UNSUPPORTED = 4  # a record version the host does not know

NAMES = {CONFLICT: "conflict", MALFORMED: "malformed", WRONG_TERMINAL: "wrong terminal", UNSUPPORTED: "unsupported"}
