"""The Quectel dialect (EC800N, EC200, BG95) of the modem emulator: PDP with QICSGP + QIACT / QIDEACT,
sockets with QIOPEN (buffer or direct push access mode), QISEND, QIRD and QICLOSE; AT+QPOWD restarts.
Reply formats as in firmware/drivers/modem_quectel.py.
"""

from host_sim.emulators.modem.base import Modem


class QuectelModem(Modem):
    dialect = "quectel"
    PWRKEY_S = (0.5, 0.65)  # EC800N/EC200 hardware design guide
    VENDOR = b"Quectel"
    MODEL = b"EC800N"
    OPEN_URC = b"+QIOPEN:"
    OPEN_IN_USE = 563  # socket identity used
    OPEN_FAILED = 566
    SEND_FAILED = b"SEND FAIL"
    CLOSED_URC = b'+QIURC: "closed",%d'
    CLOSED_FREES_LINK = False  # the buffered data stays readable until AT+QICLOSE
    PDP_LOST_URC = b'+QIURC: "pdpdeact",1'
    RECV_NOTE = b'+QIURC: "recv",%d'
    RECV_HEADER = b'+QIURC: "recv",%d,%d'
    READ_CMD = b"+QIRD="

    def dialect_commands(self):
        return [
            (b"+QICSGP=", self._ok), (b"+QIACT?", self._qiact_query), (b"+QIACT=", self._qiact),
            (b"+QIDEACT=", self._qideact), (b"+QIOPEN=", self._open), (b"+QISEND=", self._sendcmd),
            (b"+QIRD=", self._qird), (b"+QICLOSE=", self._qiclose), (b"+QPOWD", self._cfun_reset)]

    # -- PDP ----------------------------------------------------------------------------------------

    def _qiact_query(self, _args):
        lines = [b'+QIACT: 1,1,1,"10.64.0.2"'] if self.pdp else []
        self._reply(*lines)

    def _qiact(self, _args):
        if self.pdp:
            return self._reply()
        if not self.registered():
            return self._reply(final=b"ERROR")
        self.pdp = True
        self._reply()

    def _qideact(self, _args):
        self._drop_all(None)
        self.pdp = False
        self._reply()

    # -- sockets ------------------------------------------------------------------------------------

    def _open_params(self, p):
        # <ctx>,<id>,"TCP","host",port[,local,mode]: access mode 1 pushes payloads
        return p[1], p[2], p[3], p[4], len(p) > 6 and p[6] == 1

    def _sent(self, link_id, n):
        self._reply(final=b"SEND OK")

    def _qiclose(self, args):
        link_id, _ = self._link_arg(args)
        link = self.links.pop(link_id, None)
        if link is not None:
            self._close_sock(link)
        self._reply()

    def _qird(self, args):
        link_id, p = self._link_arg(args)
        link = self.links.get(link_id)
        if link is None:
            return self._reply(final=b"ERROR")
        want = p[1] if len(p) > 1 and isinstance(p[1], int) else 1500
        data = self._read_link(link, want)
        self._send(b"\r\n+QIRD: %d\r\n" % len(data) + data + b"\r\n\r\nOK\r\n")
