"""The Quectel dialect (EC800N, EC200, BG95) of the modem driver: QIACT for the PDP context, QIOPEN in
buffer access mode, QISEND, QIRD and QICLOSE for connect id 0.

Command syntax and replies relied on (Quectel "EC200x/EC800x/BG95 TCP(IP) Application Note"):
    AT+QICSGP=1,1,"<apn>","","",1; AT+QIACT? -> +QIACT: 1,<state>,...; AT+QIACT=1 (up to 150 s);
    AT+QIDEACT=1 (after pdpdeact, before activating again);
    AT+QIOPEN=1,<id>,"TCP","<host>",<port>,0,0 -> OK, then +QIOPEN: <id>,<err> (access mode 0:
    buffer); AT+QISEND=<id>,<len> -> ">" ... SEND OK | SEND FAIL (buffer full) | ERROR;
    AT+QIRD=<id>,<max> -> +QIRD: <len> CRLF <data> ... OK; AT+QICLOSE=<id> -> OK;
    URCs +QIURC: "recv",<id> / "closed",<id> / "pdpdeact",<ctx>; RDY after a (re)start
"""

from firmware.drivers import modem
from protocol import at


class Modem(modem.Modem):
    dialect = "quectel"
    # EC800N/EC200 hardware design guide: on after a >= 0.5 s PWRKEY press, off after a 0.65-1.5 s
    # press.  Verify against the fitted module at bring-up.
    PWRKEY_MS = (1000, 700)
    SEND = b"AT+QISEND=0,%d\r"
    READ = b"AT+QIRD=0,%d"
    READ_REPLY = b"+QIRD:"

    async def _pdp_down(self):
        await self.command(b"AT+QIDEACT=1", modem.T_PDP)

    async def _link_up(self):
        kind, _, lines = await self.command(b"AT+QIACT?")
        active = False
        for line in lines:
            p = at.params(line, b"+QIACT:")
            if p and len(p) >= 2 and p[0] == 1 and p[1] == 1:
                active = True
        if not active:
            if not await self._ok(b'AT+QICSGP=1,1,"%s","","",1' % self.apn.encode()):
                return False
            if not await self._ok(b"AT+QIACT=1", modem.T_PDP):
                return False
        await self._close_socket()  # a stale socket would block connect id 0
        return await self._open(b'AT+QIOPEN=1,0,"TCP","%s",%d,0,0', b"+QIOPEN:")

    def _more_waiting(self, p, room):
        # +QIRD: <len>: a full read means more may be waiting
        return p[0] == room if len(p) == 1 else None

    async def _close_socket(self):
        await self.command(b"AT+QICLOSE=0", modem.T_CLOSE)
