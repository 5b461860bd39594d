"""The SIMCom dialect (SIM7600, A76xx) of the modem driver: NETOPEN for the PDP context, CIPOPEN,
CIPSEND, CIPRXGET in manual receive mode and CIPCLOSE for link 0.

Command syntax and replies relied on (SIMCom "SIM7600 Series AT Command Manual", TCP/IP chapter):
    AT+CGDCONT=1,"IP","<apn>"; AT+CIPRXGET=1 (manual receive, set before opening);
    AT+NETOPEN? -> +NETOPEN: <0|1>; AT+NETOPEN -> OK, then +NETOPEN: <err>;
    AT+CIPOPEN=<link>,"TCP","<host>",<port> -> OK, then +CIPOPEN: <link>,<err>;
    AT+CIPSEND=<link>,<len> -> ">" ... OK, then +CIPSEND: <link>,<req>,<cnf>;
    AT+CIPRXGET=2,<link>,<max> -> +CIPRXGET: 2,<link>,<len>,<rest> CRLF <data> ... OK;
    AT+CIPCLOSE=<link> -> OK, then +CIPCLOSE: <link>,<err>; URCs +IPCLOSE: <link>,<reason>,
    +CIPEVENT: NETWORK CLOSED UNEXPECTEDLY (PDP lost), +CIPRXGET: 1,<link> (data waiting)
"""

from firmware.drivers import modem
from protocol import at


class Modem(modem.Modem):
    dialect = "simcom"
    # SIM7600 hardware design guide: on after a >= 0.5 s PWRKEY press, off after >= 2.5 s.  Verify
    # against the fitted module at bring-up.
    PWRKEY_MS = (3000, 600)
    SEND = b"AT+CIPSEND=0,%d\r"
    READ = b"AT+CIPRXGET=2,0,%d"
    READ_REPLY = b"+CIPRXGET:"

    async def _pdp_down(self):
        await self.command(b"AT+NETCLOSE", modem.T_CLOSE, b"+NETCLOSE:")

    async def _link_up(self):
        kind, _, lines = await self.command(b"AT+NETOPEN?")
        net_open = kind == at.OK and any(at.params(line, b"+NETOPEN:") == [1] for line in lines)
        if not net_open:
            if not await self._ok(b'AT+CGDCONT=1,"IP","%s"' % self.apn.encode()):
                return False
            kind, code, p = await self.command(b"AT+NETOPEN", modem.T_PDP, b"+NETOPEN:")
            if kind != at.OK or not p or p[0] != 0:
                self._fail(b"AT+NETOPEN", kind, code)
                return False
        await self._close_socket()  # a stale socket would block link 0
        if not await self._ok(b"AT+CIPRXGET=1"):  # pull receive, set before each open
            return False
        return await self._open(b'AT+CIPOPEN=0,"TCP","%s",%d', b"+CIPOPEN:")

    def _more_waiting(self, p, room):
        # +CIPRXGET: 2,<link>,<len>,<rest>: <rest> bytes still in the modem
        return p[3] != 0 if len(p) == 4 else None

    async def _close_socket(self):
        await self.command(b"AT+CIPCLOSE=0", modem.T_CLOSE, b"+CIPCLOSE:")
