"""protocol/at.py on both runtimes: AT replies, URCs, prompts and raw payloads from a chunked byte stream.

Streams are built here from a model of what a modem sends (final results, intermediate lines, URCs,
"> " prompts, payloads announced by +RECEIVE / +CIPRXGET / +QIRD / +QIURC "recv") together with the
events the model says they mean; each runtime's AtReader must produce exactly those events whatever
the chunking.  Payloads hold every byte value, including CR LF and "OK".  Random garbage never raises
and never yields a line longer than the bound.
"""

import string

from hypothesis import strategies as st
from runtimes import draw_examples

# Event kinds, as documented in protocol/at.py (checked against the module in test_event_kinds).
OK, ERROR, CME_ERROR, CMS_ERROR, SEND_OK, SEND_FAIL, PROMPT, LINE, DATA_START, DATA, OVERFLOW = range(11)

# --- bodies --------------------------------------------------------------------------------------


def body_feed(stream, cuts, max_line, push=True):
    """Feed `stream` in the pieces `cuts` delimits; events with adjacent DATA pieces merged."""
    from protocol import at

    reader = at.AtReader(max_line, push)
    events = []
    start = 0
    for cut in list(cuts) + [len(stream)]:
        for ev in reader.feed(stream[start:cut]):
            assert isinstance(ev, tuple) and len(ev) == 3, ev
            if ev[0] == at.LINE:
                assert 0 < len(ev[1]) <= max_line, ev
                assert b"\r" not in ev[1] and b"\n" not in ev[1], ev
            if ev[0] == at.DATA and events and events[-1][0] == at.DATA and events[-1][1] == ev[1]:
                events[-1] = (at.DATA, ev[1], events[-1][2] + ev[2])
            else:
                events.append(ev)
        start = cut
    assert reader.bytes_in == len(stream)
    return events, reader.errors


def body_kinds():
    from protocol import at

    return [
        at.OK,
        at.ERROR,
        at.CME_ERROR,
        at.CMS_ERROR,
        at.SEND_OK,
        at.SEND_FAIL,
        at.PROMPT,
        at.LINE,
        at.DATA_START,
        at.DATA,
        at.OVERFLOW,
    ]


def body_params(lines):
    from protocol import at

    return [at.params(line, prefix) for line, prefix in lines]


def body_headers(lines):
    from protocol import at

    return [at.payload_header(line) for line in lines]


# --- the model (CPython side) -------------------------------------------------------------------------

SPECIAL_PREFIXES = (b">", b"+CME ERROR:", b"+CMS ERROR:", b"+RECEIVE,", b"+QIRD:", b"+CIPRXGET: 2,", b'+QIURC: "recv",')
FINAL_TEXT = {b"OK": OK, b"ERROR": ERROR, b"SEND OK": SEND_OK, b"SEND FAIL": SEND_FAIL}

text_lines = (
    st.text(alphabet=string.ascii_letters + string.digits + ' +:,"._-=/?>', min_size=1, max_size=60)
    .map(str.encode)
    .filter(lambda b: not b.startswith(SPECIAL_PREFIXES) and b not in FINAL_TEXT)
)
payload = st.one_of(st.binary(max_size=300), st.just(bytes(range(256))), st.just(b"\r\nOK\r\n> \r\n"))
links = st.integers(0, 9)

items = st.one_of(
    st.tuples(st.just("final"), st.sampled_from(sorted(FINAL_TEXT))),
    st.tuples(st.just("cme"), st.integers(0, 999)),
    st.tuples(st.just("cms"), st.integers(0, 999)),
    st.tuples(st.just("line"), text_lines),
    st.tuples(st.just("prompt")),
    st.tuples(st.just("receive"), links, payload),
    st.tuples(st.just("ciprxget"), links, payload),
    st.tuples(st.just("qird"), payload),
    st.tuples(st.just("push"), links, payload),
)


def render(item):
    """(bytes on the wire, events they mean) for one modem output."""
    kind = item[0]
    if kind == "final":
        return b"\r\n" + item[1] + b"\r\n", [(FINAL_TEXT[item[1]], None, None)]
    if kind in ("cme", "cms"):
        line = b"+%s ERROR: %d" % (kind.upper().encode(), item[1])
        return b"\r\n" + line + b"\r\n", [(CME_ERROR if kind == "cme" else CMS_ERROR, item[1], None)]
    if kind == "line":
        return b"\r\n" + item[1] + b"\r\n", [(LINE, item[1], None)]
    if kind == "prompt":
        return b"\r\n> ", [(PROMPT, None, None)]
    if kind == "qird":
        data = item[1]
        header, link, tail = b"+QIRD: %d" % len(data), -1, b"\r\n\r\nOK\r\n"
    else:
        link, data = item[1], item[2]
        tail = b""
        if kind == "receive":
            header = b"+RECEIVE,%d,%d" % (link, len(data))
        elif kind == "ciprxget":
            header, tail = b"+CIPRXGET: 2,%d,%d,0" % (link, len(data)), b"\r\nOK\r\n"
        else:
            header = b'+QIURC: "recv",%d,%d' % (link, len(data))
    events = [(LINE, header, None), (DATA_START, link, len(data))]
    if data:
        events.append((DATA, link, data))
    if tail:
        events.append((OK, None, None))
    return b"\r\n" + header + b"\r\n" + data + tail, events


def build(item_list):
    stream, events = b"", []
    for item in item_list:
        s, e = render(item)
        stream += s
        events += e
    return stream, events


cut_seeds = st.one_of(st.lists(st.integers(0, 10**6), max_size=12), st.just(None))


def cuts_for(stream, seeds):
    if seeds is None:
        return list(range(1, len(stream)))  # every byte on its own
    return sorted({s % (len(stream) + 1) for s in seeds})


# --- tests -------------------------------------------------------------------------------------------


def test_event_kinds(runtime):
    assert runtime.run(body_kinds) == list(range(11))


def test_documented_examples(runtime):
    stream = (
        b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"  # echo, intermediate, final
        b"\r\n+CME ERROR: 10\r\n\r\n+CME ERROR: SIM not inserted\r\n"
        b'\r\n> \r\nSEND OK\r\n\r\n+QIURC: "closed",0\r\n'
        b"\r\n+QIRD: 4\r\nOK\r\n\r\n\r\nOK\r\n"
    )
    events, errors = runtime.run(body_feed, stream, [], 256)
    assert events == [
        (LINE, b"AT+CSQ", None),
        (LINE, b"+CSQ: 20,99", None),
        (OK, None, None),
        (CME_ERROR, 10, None),
        (CME_ERROR, -1, None),
        (PROMPT, None, None),
        (SEND_OK, None, None),
        (LINE, b'+QIURC: "closed",0', None),
        (LINE, b"+QIRD: 4", None),
        (DATA_START, -1, 4),
        (DATA, -1, b"OK\r\n"),
        (OK, None, None),
    ]
    assert errors == 0


def test_model_streams_in_any_chunking(runtime):
    examples = draw_examples(st.tuples(st.lists(items, max_size=12), cut_seeds))
    batch, expected = [], []
    for item_list, seeds in examples:
        stream, events = build(item_list)
        batch.append((stream, cuts_for(stream, seeds), 256))
        expected.append(events)
    results = runtime.run_many(body_feed, batch)
    for want, (got, errors) in zip(expected, results):
        assert got == want
        assert errors == 0


def test_lenient_terminators(runtime):
    streams = [b"+RECEIVE,1,3\nabc\r\nOK\r\n", b"+RECEIVE,1,3\rabcOK\r", b"OK\rERROR\n\n\rSEND OK"]
    got = runtime.run_many(body_feed, [(s, [], 64) for s in streams])
    assert got[0][0] == [(LINE, b"+RECEIVE,1,3", None), (DATA_START, 1, 3), (DATA, 1, b"abc"), (OK, None, None)]
    assert got[1][0] == [(LINE, b"+RECEIVE,1,3", None), (DATA_START, 1, 3), (DATA, 1, b"abc"), (OK, None, None)]
    # an unterminated last line is not complete yet
    assert got[2][0] == [(OK, None, None), (ERROR, None, None)]


def test_overlong_lines_are_dropped_and_counted(runtime):
    stream = b"\r\n" + b"x" * 100 + b"\r\nOK\r\n" + b"+RECEIVE,0," + b"9" * 80 + b"\r\nERROR\r\n"
    for seeds in (None, [7, 50, 101]):
        events, errors = runtime.run(body_feed, stream, cuts_for(stream, seeds), 32)
        assert events == [(OVERFLOW, None, None), (OK, None, None), (OVERFLOW, None, None), (ERROR, None, None)]
        assert errors == 2


def test_garbled_headers_announce_nothing(runtime):
    lines = [
        b"+RECEIVE,0",
        b"+RECEIVE,x,5",
        b"+RECEIVE,0,99999",
        b"+QIRD: -1",
        b"+QIRD: 5,6",
        b"+CIPRXGET: 2,0,5",
        b'+QIURC: "recv",0',
        b"+QIURC: recv,0,5,1",
        b"+CIPRXGET: 1,0",
        b"+RECEIVE,0,5",
        b"+QIRD: 0",
        b'+QIURC: "recv",2,7',
        b"+CIPRXGET: 2,3,8,100",
    ]
    got = runtime.run(body_headers, lines)
    assert got == [None] * 9 + [(0, 5), (-1, 0), (2, 7), (3, 8)]
    # and in a stream, a garbled header is a plain line: the next line is parsed normally
    events, _ = runtime.run(body_feed, b"+RECEIVE,0,x\r\nOK\r\n", [], 64)
    assert events == [(LINE, b"+RECEIVE,0,x", None), (OK, None, None)]


def test_params(runtime):
    cases = [
        (b'+QIURC: "recv",0,5', b"+QIURC:"),
        (b"+CSQ: 20,99", b"+CSQ:"),
        (b"+CREG: 0,5", b"+CREG:"),
        (b'+QIACT: 1,1,1,"10.0.0.2"', b"+QIACT:"),
        (b'+COPS: 0,0,"CHN, CT",7', b"+COPS:"),
        (b"+CSQ: 20,99", b"+CREG:"),
        (b"+CIPOPEN: 0,0", b"+CIPOPEN:"),
        (b"+X:", b"+X:"),
    ]
    assert runtime.run(body_params, cases) == [
        [b"recv", 0, 5],
        [20, 99],
        [0, 5],
        [1, 1, 1, b"10.0.0.2"],
        [0, 0, b"CHN, CT", 7],
        None,
        [0, 0],
        [b""],
    ]


def test_garbage_never_raises(runtime):
    examples = draw_examples(st.tuples(st.binary(max_size=600), cut_seeds))
    results = runtime.run_many(body_feed, [(s, cuts_for(s, seeds), 48) for s, seeds in examples])
    for (stream, _), (events, errors) in zip(examples, results):
        assert errors == sum(1 for e in events if e[0] == OVERFLOW)
        data = b"".join(e[2] for e in events if e[0] == DATA)
        assert len(data) <= len(stream)


def test_pull_mode_reader_ignores_push_headers(runtime):
    # a stray or garbled push header must not swallow the reply that follows it
    stream = b'\r\n+RECEIVE,0,24\r\nOK\r\n\r\n+QIURC: "recv",0,8\r\nERROR\r\n\r\n+QIRD: 2\r\nab\r\n\r\nOK\r\n'
    events, _ = runtime.run(body_feed, stream, [], 256, False)
    assert events == [
        (LINE, b"+RECEIVE,0,24", None),
        (OK, None, None),
        (LINE, b'+QIURC: "recv",0,8', None),
        (ERROR, None, None),
        (LINE, b"+QIRD: 2", None),
        (DATA_START, -1, 2),
        (DATA, -1, b"ab"),
        (OK, None, None),
    ]
