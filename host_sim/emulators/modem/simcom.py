"""The SIMCom dialect (SIM7600, A76xx) of the modem emulator: PDP with CGDCONT + NETOPEN, sockets with
CIPOPEN, CIPSEND, CIPRXGET (pushed +RECEIVE by default, pulled after AT+CIPRXGET=1) and CIPCLOSE;
AT+CRESET restarts.  Reply formats as in firmware/drivers/modem_simcom.py.
"""

from host_sim.emulators.modem.base import Modem
from protocol import at


class SimcomModem(Modem):
    dialect = "simcom"
    PWRKEY_S = (0.5, 2.5)  # SIM7600 hardware design guide
    PUSH_RX = True  # +RECEIVE until AT+CIPRXGET=1 switches to pull
    VENDOR = b"SIMCOM INCORPORATED"
    MODEL = b"SIM7600G-H"
    BOOT_URCS = (b"RDY", b"+CPIN: READY", b"PB DONE")
    OPEN_URC = b"+CIPOPEN:"
    OPEN_IN_USE = 4
    OPEN_FAILED = 1
    SEND_FAILED = b"ERROR"
    CLOSED_URC = b"+IPCLOSE: %d,1"
    CLOSED_FREES_LINK = True
    PDP_LOST_URC = b"+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY"
    RECV_NOTE = b"+CIPRXGET: 1,%d"
    RECV_HEADER = b"+RECEIVE,%d,%d"
    READ_CMD = b"+CIPRXGET=2,"

    def dialect_commands(self):
        return [
            (b"+CIPRXGET=2,", self._ciprxget_read), (b"+CIPRXGET=", self._ciprxget_mode),
            (b"+NETOPEN?", self._netopen_query), (b"+NETOPEN", self._netopen), (b"+NETCLOSE", self._netclose),
            (b"+CIPOPEN=", self._open), (b"+CIPSEND=", self._sendcmd), (b"+CIPCLOSE=", self._cipclose),
            (b"+CRESET", self._cfun_reset)]

    # -- PDP ----------------------------------------------------------------------------------------

    def _netopen_query(self, _args):
        self._reply(b"+NETOPEN: %d" % (1 if self.pdp else 0))

    def _netopen(self, _args):
        if self.pdp:
            return self._reply(b"+IP ERROR: Network is already opened", final=b"ERROR")
        self._reply()
        self.pdp = self.registered()
        self._urc(b"+NETOPEN: %d" % (0 if self.pdp else 1))

    def _netclose(self, _args):
        self._drop_all(None)
        was = self.pdp
        self.pdp = False
        self._reply()
        self._urc(b"+NETCLOSE: %d" % (0 if was else 2))

    # -- sockets ------------------------------------------------------------------------------------

    def _open_params(self, p):
        # <link>,"TCP","host",port
        return p[0], p[1], p[2], p[3], self.push_rx

    def _sent(self, link_id, n):
        self._reply()
        self._urc(b"+CIPSEND: %d,%d,%d" % (link_id, n, n))

    def _cipclose(self, args):
        link_id, _ = self._link_arg(args)
        link = self.links.pop(link_id, None)
        if link is None:
            self._reply(final=b"ERROR")
            return
        self._close_sock(link)
        self._reply()
        self._urc(b"+CIPCLOSE: %d,0" % link_id)

    def _ciprxget_mode(self, args):
        p = at.params(args, b"")
        if not p or p[0] not in (0, 1):
            return self._reply(final=b"ERROR")
        self.push_rx = p[0] == 0
        self._reply()

    def _ciprxget_read(self, args):
        p = at.params(args, b"")
        if not p or len(p) < 2 or not isinstance(p[0], int) or not isinstance(p[1], int):
            return self._reply(final=b"ERROR")
        link = self.links.get(p[0])
        if link is None:
            return self._reply(final=b"ERROR")
        if not link.buf:
            return self._reply(b"+IP ERROR: No data", final=b"ERROR")
        data = self._read_link(link, p[1])
        self._send(b"\r\n+CIPRXGET: 2,%d,%d,%d\r\n" % (p[0], len(data), len(link.buf)) + data + b"\r\nOK\r\n")
