"""AT-command replies of a cellular modem, from a raw byte stream: lines, final results, prompts, data.

A modem's UART carries, mixed together: the replies to the command in flight (intermediate lines such
as "+CSQ: 20,99", then one final result), unsolicited result codes (URCs) at any moment, the "> "
prompt that asks for the payload of a send, and raw socket payloads of a length announced by the line
before them.  `AtReader.feed(chunk)` turns whatever arrived into a list of events; it keeps no more
than one bounded line of state, so a modem that streams garbage or an endless line costs nothing.

Events are tuples `(kind, a, b)`:
    (OK, None, None) (ERROR, None, None) (SEND_OK, ..) (SEND_FAIL, ..)      final results
    (CME_ERROR, code, None) (CMS_ERROR, code, None)     "+CME ERROR: 10": code int, -1 when not a number
    (PROMPT, None, None)                                 "> " at the start of a line (send data now)
    (LINE, bytes, None)                                  any other line: intermediate reply or URC
    (DATA_START, link, length)                           a header announcing `length` raw bytes
    (DATA, link, bytes)                                  raw payload bytes (in pieces as they arrive)
    (OVERFLOW, None, None)                               a line longer than max_line, discarded
The header line of a payload is also delivered as a LINE, so a caller may parse its other fields.

Payload headers recognised (manual facts; formats from the SIMCom SIM7600 series AT command manual,
TCP/IP section, and the Quectel EC200/EC800/BG95 TCP(IP) application note):
    +RECEIVE,<link>,<len>                   SIMCom, automatic receive mode (AT+CIPRXGET=0)
    +CIPRXGET: 2,<link>,<len>,<rest>        SIMCom, manual receive: reply to AT+CIPRXGET=2,<link>,<max>
    +QIRD: <len>                            Quectel, buffer access mode: reply to AT+QIRD=<id>,<max>
    +QIURC: "recv",<id>,<len>               Quectel, direct push access mode
Each is followed by CR LF and then exactly <len> raw bytes (any values, CR LF and "OK" included).
Lines end with CR, LF or both; empty lines are skipped.  A line that merely starts like a header but
does not parse (garbled) stays a plain LINE and announces nothing.
"""

OK = 0
ERROR = 1
CME_ERROR = 2
CMS_ERROR = 3
SEND_OK = 4
SEND_FAIL = 5
PROMPT = 6
LINE = 7
DATA_START = 8
DATA = 9
OVERFLOW = 10

FINALS = (OK, ERROR, CME_ERROR, CMS_ERROR, SEND_OK, SEND_FAIL)
MAX_LINE = 256
MAX_DATA = 8192  # a header announcing more than this is garbled: no modem sends more at once

_CR = 13
_LF = 10
_GT = 62
_SP = 32

# Reader states.
_LINE = 0
_AFTER_CR = 1  # a header line ended with CR: one LF may follow before the payload
_DATA = 2
_AFTER_PROMPT = 3  # swallow the space of "> "

_FIXED = {b"OK": OK, b"ERROR": ERROR, b"SEND OK": SEND_OK, b"SEND FAIL": SEND_FAIL}


def _int(text):
    """A decimal integer from bytes, or None (no sign, no spaces around, at most 6 digits)."""
    if not text or len(text) > 6:
        return None
    n = 0
    for c in text:
        if c < 48 or c > 57:
            return None
        n = n * 10 + c - 48
    return n


def params(line, prefix):
    """The comma-separated parameters after `prefix` (bytes), or None when the line lacks it.

    Numbers become ints, quoted strings become bytes without the quotes, anything else stays bytes
    (stripped).  Commas inside quotes do not split.  Example: params(b'+QIURC: "recv",0,5', b"+QIURC:")
    -> [b"recv", 0, 5].
    """
    if not line.startswith(prefix):
        return None
    out = []
    field = bytearray()
    quoted = False
    was_quoted = False
    for c in line[len(prefix) :]:
        if c == 34:  # "
            if not was_quoted:
                field = bytearray()  # spaces before the opening quote
            quoted = not quoted
            was_quoted = True
        elif c == 44 and not quoted:  # ,
            out.append(_value(field, was_quoted))
            field = bytearray()
            was_quoted = False
        else:
            field.append(c)
    out.append(_value(field, was_quoted))
    return out


def _value(field, was_quoted):
    if was_quoted:
        return bytes(field)
    text = bytes(field).strip()
    n = _int(text)
    return text if n is None else n


def payload_header(line, push=True):
    """(link, length) when `line` announces a raw payload, else None.  QIRD has no link: -1.

    With push=False only the replies to a read command (+CIPRXGET: 2 and +QIRD) announce payloads:
    a driver that runs the modem in pull mode then never takes a stray or garbled push header for a
    reason to swallow the bytes after it.
    """
    p = None
    link = -1
    if not push and (line.startswith(b"+RECEIVE,") or line.startswith(b'+QIURC: "recv",')):
        return None
    if line.startswith(b"+RECEIVE,"):
        p = params(line, b"+RECEIVE,")
        if p is None or len(p) != 2:
            return None
        link, n = p
    elif line.startswith(b"+QIRD:"):
        p = params(line, b"+QIRD:")
        if p is None or len(p) != 1:
            return None
        n = p[0]
    elif line.startswith(b"+CIPRXGET: 2,"):
        p = params(line, b"+CIPRXGET:")
        if p is None or len(p) != 4:
            return None
        link, n = p[1], p[2]
    elif line.startswith(b'+QIURC: "recv",'):
        p = params(line, b"+QIURC:")
        if p is None or len(p) != 3:
            return None
        link, n = p[1], p[2]
    else:
        return None
    if type(link) is not int or type(n) is not int or n > MAX_DATA:
        return None
    return link, n


def classify(line):
    """The event for one complete line."""
    kind = _FIXED.get(line)
    if kind is not None:
        return (kind, None, None)
    if line.startswith(b"+CME ERROR:") or line.startswith(b"+CMS ERROR:"):
        code = _int(line[11:].strip())
        return (CME_ERROR if line[3] == 69 else CMS_ERROR, -1 if code is None else code, None)  # E / S
    return (LINE, line, None)


class AtReader:
    """Incremental reader.  `errors` counts discarded overlong lines; `bytes_in` counts all input.

    push=False: pushed payload headers (+RECEIVE, +QIURC "recv" with a length) are plain lines, for
    a modem in pull receive mode (see payload_header).
    """

    def __init__(self, max_line=MAX_LINE, push=True):
        self._push = push  # whether +RECEIVE / +QIURC "recv",<id>,<len> announce payloads
        self._line = bytearray(max_line)
        self._n = 0
        self._overlong = False
        self._state = _LINE
        self._link = 0
        self._left = 0
        self.errors = 0
        self.bytes_in = 0

    def feed(self, data):
        """Consume `data` (bytes-like); the list of events it completed, in order."""
        events = []
        mv = memoryview(data)
        i = 0
        end = len(mv)
        self.bytes_in += end
        line = self._line
        while i < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - i)
                events.append((DATA, self._link, bytes(mv[i : i + take])))
                i += take
                self._left -= take
                if self._left == 0:
                    self._state = _LINE
                continue
            b = mv[i]
            i += 1
            if state == _AFTER_CR:
                self._state = _DATA
                if b == _LF:
                    continue
                i -= 1  # no LF: this byte is already payload
                continue
            if state == _AFTER_PROMPT:
                self._state = _LINE
                if b == _SP:
                    continue
            if b == _CR or b == _LF:
                self._end_line(events, b)
            elif b == _GT and self._n == 0 and not self._overlong:
                events.append((PROMPT, None, None))
                self._state = _AFTER_PROMPT
            elif self._n < len(line):
                line[self._n] = b
                self._n += 1
            else:
                self._overlong = True
        return events

    def _end_line(self, events, terminator):
        n, overlong = self._n, self._overlong
        self._n = 0
        self._overlong = False
        if overlong:
            self.errors += 1
            events.append((OVERFLOW, None, None))
            return
        if n == 0:
            return
        text = bytes(memoryview(self._line)[:n])
        event = classify(text)
        events.append(event)
        if event[0] != LINE:
            return
        header = payload_header(text, self._push)
        if header is None:
            return
        link, length = header
        events.append((DATA_START, link, length))
        if length:
            self._link = link
            self._left = length
            self._state = _AFTER_CR if terminator == _CR else _DATA

    def reset(self):
        """Forget any partial line or payload (after the modem was power-cycled)."""
        self._n = 0
        self._overlong = False
        self._state = _LINE
        self._left = 0
