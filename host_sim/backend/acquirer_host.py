"""`python -m host_sim acquirer-host --listen HOST:PORT [--rules FILE]`: the acquirer and its issuers.

The collector sends each deferred transaction as an ISO 8583 authorisation request (0100) over TCP
(host_sim/backend/ISO8583.md); this host answers 0110.  The card is checked by the issuer simulation
(host_sim/backend/issuer.py: the application cryptogram with the card's keys), then by the acquirer's
rules (host_sim/backend/acquirer.py: blocked tokens, amount limit, seeded random declines).

Hostile or broken input never stops the host: a length header outside 1..MAX_MESSAGE, a connection
that stalls mid-message or ends inside one is logged and closed; a well-framed request that does not
decode is answered with response code 30 (format error); any other message is logged and its
connection closed.  No PAN or cryptogram is ever logged.
"""

import argparse
import asyncio
import hashlib
import json
import logging
import signal
import sys

from host_sim import arguments
from host_sim.backend import iso8583
from host_sim.backend.acquirer import Acquirer, load_rules
from host_sim.backend.issuer import Issuer

log = logging.getLogger("acquirer-host")

READ_TIMEOUT_S = 10  # a message started must be complete within this
IDLE_TIMEOUT_S = 600  # a connection that sends nothing this long is closed
ECHO = ("3", "4", "11", "37", "41", "42", "49")  # request fields the response repeats
REQUIRED = ("3", "4", "11", "37", "41", "49")
CODE_OF_REASON = {text: code for code, text in iso8583.RESPONSE_TEXT.items()}


class AcquirerHost:
    """Message in, message out, without I/O: the TCP server and the collector's in-process link share it."""

    def __init__(self, acquirer=None, delay_ms=0):
        self.acquirer = acquirer if acquirer is not None else Acquirer()
        self.issuer = Issuer()
        self.delay_ms = delay_ms  # a slow issuer for online authorisations (0200): tests of the timeout path
        self.online = {}  # RRN -> (response code, reason, approval) of each 0200 answered
        self.reversed = set()  # RRNs of reversed online authorisations

    def delay_s(self, message):
        """Seconds to wait before answering `message`: delay_ms for an 0200, else none."""
        return self.delay_ms / 1000 if self.delay_ms and bytes(message[:4]) == b"0200" else 0

    def _online(self, fields):
        """An 0200 (payment code) or 0400 (its reversal): the response fields."""
        from host_sim import paycodes

        rrn = fields.get("37", "")
        try:
            private = iso8583.private_elements(fields.get("48", ""))
        except iso8583.MessageError:
            private = {}
        out = {f: fields[f] for f in ECHO if fields.get(f)}
        if fields["t"] == iso8583.REVERSAL_REQUEST:
            self.reversed.add(rrn)
            log.info("0400 RRN %s terminal %s: reversed", rrn, fields.get("41"))
            out.update({"t": iso8583.REVERSAL_RESPONSE, "39": iso8583.APPROVED})
            return out
        out["t"] = iso8583.FINANCIAL_RESPONSE
        if rrn in self.online:  # a retry of the same request: the same answer
            code, reason, approval = self.online[rrn]
        elif not fields.get("4", "").isdigit() or "PC" not in private:
            code, reason, approval = iso8583.FORMAT_ERROR, "format error", ""
        else:
            ok, reason = paycodes.verdict(private["PC"], int(fields["4"]))
            code = iso8583.APPROVED if ok else (iso8583.INSUFFICIENT_FUNDS if reason == "insufficient funds"
                                                 else iso8583.INVALID_CARD_NUMBER)
            digest = hashlib.sha256(("%s|%s" % (rrn, fields.get("41"))).encode()).digest()
            approval = "%06d" % (int.from_bytes(digest[:4], "big") % 1000000) if ok else ""
            self.online[rrn] = (code, reason, approval)
        log.info("0200 RRN %s terminal %s amount %s %s -> %s %s", rrn, fields.get("41"), fields.get("4"),
                 private.get("FM", "?"), code, reason or "")
        out["39"] = code
        if approval:
            out["38"] = approval
        elif reason:
            out["44"] = reason[:25]
        return out

    def respond(self, message):
        """The response bytes to one message; None when the connection should be closed instead."""
        try:
            fields = iso8583.decode(message)
        except iso8583.MessageError as e:
            mti = bytes(message[:4])
            if mti == iso8583.AUTHORISATION_REQUEST.encode():
                log.warning("format error in an 0100: %s", e)
                return iso8583.encode({"t": iso8583.AUTHORISATION_RESPONSE, "39": iso8583.FORMAT_ERROR,
                                       "44": "format error"})
            log.warning("refused a message that does not decode: %s", e)
            return None
        if fields["t"] in (iso8583.FINANCIAL_REQUEST, iso8583.REVERSAL_REQUEST):
            return iso8583.encode(self._online(fields))
        if fields["t"] != iso8583.AUTHORISATION_REQUEST:
            log.warning("refused message type %s: only 0100, 0200 and 0400 are served", fields["t"])
            return None
        try:
            code, reason = self.decide(fields)
        except Exception:  # a bug here must cost one answer, not the host
            log.exception("deciding request STAN %s failed", fields.get("11"))
            code, reason = iso8583.SYSTEM_MALFUNCTION, "system malfunction"
        log.info("0100 RRN %s terminal %s amount %s -> %s %s", fields.get("37"), fields.get("41"), fields.get("4"),
                 code, reason or "")
        return iso8583.encode(self.response(fields, code, reason))

    def decide(self, fields):
        """(response code, reason or None) for a decoded 0100."""
        missing = [f for f in REQUIRED if not fields.get(f)]
        if missing or not fields["4"].isdigit():
            return iso8583.FORMAT_ERROR, "missing DE %s" % ",".join(missing or ["4"])
        try:
            private = iso8583.private_elements(fields.get("48", ""))
        except iso8583.MessageError as e:
            return iso8583.FORMAT_ERROR, str(e)[:25]
        card = self.issuer.check(fields)
        if card is None and self.acquirer.rules["require_cryptogram"]:
            return iso8583.DO_NOT_HONOUR, "no card data"
        if card is not None and card[0] != iso8583.APPROVED:
            return card
        try:
            atc = iso8583.icc_tags(fields["55"]).get(0x9F36) if "55" in fields else None
        except iso8583.MessageError as e:
            return iso8583.FORMAT_ERROR, str(e)[:25]
        token = bytes.fromhex(private["TK"]) if _hex(private.get("TK")) else b""
        seq = int(private["SQ"]) if private.get("SQ", "").isdigit() else 0
        ok, reason = self.acquirer.decide(private.get("TI", fields["41"]), seq, token, int(fields["4"]), atc)
        if ok:
            return iso8583.APPROVED, None
        return CODE_OF_REASON.get(reason, iso8583.DO_NOT_HONOUR), reason

    @staticmethod
    def response(fields, code, reason):
        out = {"t": iso8583.AUTHORISATION_RESPONSE, "39": code}
        out.update({f: fields[f] for f in ECHO if fields.get(f)})
        if code == iso8583.APPROVED:  # approval code: six digits from the reference, the same on a repeat
            digest = hashlib.sha256(("%s|%s" % (fields["37"], fields["41"])).encode()).digest()
            out["38"] = "%06d" % (int.from_bytes(digest[:4], "big") % 1000000)
        elif reason:
            out["44"] = reason[:25]
        return out


def _hex(text):
    try:
        return bool(text) and len(bytes.fromhex(text)) == 16
    except ValueError:
        return False


async def handle(host, reader, writer):
    """One collector connection: framed requests in, framed responses out, until it closes."""
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                header = await asyncio.wait_for(reader.readexactly(iso8583.HEADER_SIZE), IDLE_TIMEOUT_S)
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    log.warning("%s: connection ended inside a length header; closing", peer)
                break
            size = iso8583.frame_length(header)
            message = await asyncio.wait_for(reader.readexactly(size), READ_TIMEOUT_S)
            delay = host.delay_s(message)
            if delay:
                await asyncio.sleep(delay)
            reply = host.respond(message)
            if reply is None:
                log.warning("%s: closing the connection after a message it cannot answer", peer)
                break
            writer.write(iso8583.framed(reply))
            await writer.drain()
    except iso8583.MessageError as e:
        log.warning("%s: %s; closing", peer, e)
    except asyncio.IncompleteReadError as e:
        log.warning("%s: connection ended %d bytes into a %s-byte message; closing", peer, len(e.partial),
                    e.expected)
    except asyncio.TimeoutError:
        log.warning("%s: no complete message in time; closing", peer)
    except ConnectionError as e:
        log.info("%s: connection lost: %s", peer, e)
    finally:
        writer.close()


async def serve(host_addr, port, host, ready=None):
    server = await asyncio.start_server(lambda r, w: handle(host, r, w), host_addr, port)
    bound = server.sockets[0].getsockname()
    if ready is not None:
        ready("%s:%d" % (bound[0], bound[1]))
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    async with server:
        await done.wait()


def main(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        rules = load_rules(args.rules) if args.rules else None
    except (OSError, ValueError) as e:
        print("acquirer-host: cannot read rules %s: %s" % (args.rules, e), file=sys.stderr)
        return 2

    def ready(address):
        print(json.dumps({"listen": address}), flush=True)

    try:
        asyncio.run(serve(*arguments.split_host_port(args.listen), AcquirerHost(Acquirer(rules), args.delay_ms),
                          ready))
    except OSError as e:
        print(json.dumps({"error": "cannot listen on %s: %s" % (args.listen, e)}), flush=True)
        return 1
    return 0


def _delay(text):
    if not text.isdigit() or int(text) > 60000:
        raise argparse.ArgumentTypeError("%r is not a delay in 0..60000 ms" % text)
    return int(text)


def add_arguments(parser):
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", type=arguments.host_port,
                        help="where collectors connect (port 0: any)")
    parser.add_argument("--rules", metavar="FILE", type=arguments.json_file,
                        help="JSON acquirer rules (host_sim/backend/acquirer.py)")
    parser.add_argument("--delay-ms", type=_delay, default=0, metavar="MS",
                        help="answer online payment-code authorisations (0200) this much later: a slow issuer")
