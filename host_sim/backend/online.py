"""Online authorisation of payment codes: a terminal's ONLINE_REQUEST forwarded to the acquirer as an
ISO 8583 0200, answered within its deadline, and never charged twice.

The exchange runs in a worker thread (the event loop and the store's write lock are never held while
the acquirer thinks); the answer reaches the Session through `deliver(body)`, which only queues it.
A timer answers "unavailable" when the acquirer has not answered by the deadline less LINK_MARGIN_MS
(the time the answer needs over the terminal's link).  Then an approval that arrives anyway is reversed
(0400), and so is an approval whose terminal record says declined (its deadline passed on the
terminal) or a request id the terminal used again for another code (it rebooted before journalling
the tap).  Every authorisation is one row of `online_auth`: masked code, never the code itself.
"""

import concurrent.futures
import logging
import threading
import time

from host_sim.backend import acquirer_link, iso8583
from protocol import link, paycode, record

log = logging.getLogger("collector")

LINK_MARGIN_MS = 500  # of the terminal's deadline, kept for the answer's way back over the link
MIN_BUDGET_MS = 100
LATE_S = 15.0  # an acquirer answer later than this is no answer: the request is reversed blindly
WORKERS = 8

# The table: online_auth in host_sim/backend/store.py SCHEMA.
# result: pending -> approved | declined | unavailable; approved -> reversed (never the other way)


class OnlineAuthoriser:
    """One per collector.  `make_link()` gives an acquirer link (acquirer_link.TcpLink or LocalLink)
    for a worker thread's own use."""

    def __init__(self, store, make_link, workers=WORKERS, late_s=LATE_S):
        self.store = store
        self.make_link = make_link
        self.late_s = late_s
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="online")
        self._local = threading.local()
        self.reversals = 0

    def _link(self):
        lk = getattr(self._local, "link", None)
        if lk is None:
            lk = self._local.link = self.make_link()
        return lk

    # -- requests -------------------------------------------------------------------------------

    def request(self, terminal, msg, deliver):
        """Handle one ONLINE_REQUEST of `terminal` (hex): `deliver(ONLINE_RESULT body)` is called once,
        from any thread, within the request's deadline less LINK_MARGIN_MS."""
        rid = msg["request_id"]
        code = bytes(msg["code"])
        masked = paycode.masked(code)
        row = self._row(terminal, rid)
        if row is not None:
            if row[0] == masked and row[1] != "pending":  # the same request again (a new session)
                deliver(self._body(rid, row[1], row[2], row[3], row[4]))
                return
            if row[0] != masked and row[1] == "approved":  # the id came again with another code
                self._reverse_later(terminal, rid, "request id reused: the terminal never journalled it")
        with self.store.lock:
            self.store.db.execute(
                "INSERT INTO online_auth (terminal, request_id, family, code_masked, amount, currency, result)"
                " VALUES (?,?,?,?,?,?, 'pending') ON CONFLICT(terminal, request_id) DO UPDATE SET"
                " family=excluded.family, code_masked=excluded.code_masked, amount=excluded.amount,"
                " currency=excluded.currency, result='pending', reason=NULL, approval=NULL, reference=NULL",
                (terminal, rid, paycode.NAMES.get(msg["family"], "unknown"), masked, msg["amount"], msg["currency"]))
        budget = max(MIN_BUDGET_MS, msg["deadline_ms"] - LINK_MARGIN_MS) / 1000
        state = {"answered": False, "lock": threading.Lock(), "t0": time.monotonic()}

        def on_deadline():
            with state["lock"]:
                if state["answered"]:
                    return
                state["answered"] = True
            self._set(terminal, rid, "unavailable", "acquirer timeout", None, None, state)
            deliver(link.online_result(rid, link.ONLINE_UNAVAILABLE, "acquirer timeout"))

        timer = threading.Timer(budget, on_deadline)
        timer.daemon = True
        timer.start()
        self.pool.submit(self._exchange, terminal, dict(msg, code=code), deliver, state, timer)

    def _exchange(self, terminal, msg, deliver, state, timer):
        rid = msg["request_id"]
        lk = self._link()
        sent = acquirer_link.online_request(terminal, msg, lk.stan.next())
        try:
            approved, reason, approval, rrn = acquirer_link.online_outcome(
                sent, lk.exchange(iso8583.encode(sent)), iso8583.FINANCIAL_RESPONSE)
        except acquirer_link.AcquirerUnavailable as e:
            lk.close()
            approved, reason, approval, rrn = None, str(e), "", sent["37"]
        with state["lock"]:
            late = state["answered"]
            state["answered"] = True
        timer.cancel()
        if late:
            if approved:
                log.warning("online %s/%d: approval after the terminal was told unavailable: reversing",
                            terminal, rid)
                self._set(terminal, rid, "approved", None, approval, rrn, state)
                self._reverse(terminal, rid, sent, "approved after the deadline")
            elif approved is None:  # no answer at all: it may have been approved where we cannot see
                self._reverse(terminal, rid, sent, "no answer from the acquirer")
            return
        if approved is None:
            self._set(terminal, rid, "unavailable", reason[:60], None, None, state)
            deliver(link.online_result(rid, link.ONLINE_UNAVAILABLE, "acquirer unavailable"))
            self._reverse(terminal, rid, sent, "no usable answer")
            return
        result = "approved" if approved else "declined"
        self._set(terminal, rid, result, reason, approval, rrn, state)
        deliver(self._body(rid, result, reason, approval, rrn))

    @staticmethod
    def _body(rid, result, reason, approval, rrn):
        if result == "approved":
            return link.online_result(rid, link.ONLINE_APPROVED, "", approval.encode(), rrn.encode())
        if result == "declined":
            return link.online_result(rid, link.ONLINE_DECLINED, (reason or "declined")[:link.ONLINE_REASON_MAX])
        return link.online_result(rid, link.ONLINE_UNAVAILABLE, (reason or "unavailable")[:link.ONLINE_REASON_MAX])

    # -- never charge twice ---------------------------------------------------------------------

    def records(self, terminal, recs):
        """Stored records of `terminal`: a declined payment code whose request was approved is reversed."""
        for rec in recs:
            ext = rec["ext"].get(record.EXT_PAYCODE)
            if rec["kind"] != record.KIND_PAYMENT_CODE or rec["decision"] != record.DECLINED or not ext or \
                    len(ext) < 6 or ext[0] != record.PATH_ONLINE:
                continue
            rid = int.from_bytes(ext[2:6], "little")
            row = self._row(terminal, rid)
            if row is not None and row[1] in ("approved", "pending"):
                self._reverse_later(terminal, rid, "the terminal declined it (record %d)" % rec["seq"])

    def _reverse_later(self, terminal, rid, why):
        row = self._row(terminal, rid)
        if row is None:
            return
        msg = {"request_id": rid, "family": paycode.FAMILY_OF_NAME.get(row[5], 0), "amount": row[6],
               "currency": row[7], "code": b"0"}
        self.pool.submit(self._reverse, terminal, rid, None, why, msg)

    def _reverse(self, terminal, rid, sent, why, msg=None):
        """Send 0400 for the 0200 `sent` (rebuilt from the row when None); mark the row reversed."""
        lk = self._link()
        if sent is None:
            sent = acquirer_link.online_request(terminal, msg, 0)
        rev = acquirer_link.reversal(sent, lk.stan.next())
        for attempt in range(3):
            try:
                lk.exchange(iso8583.encode(rev))
                break
            except acquirer_link.AcquirerUnavailable as e:
                lk.close()
                log.warning("online %s/%d: reversal attempt %d failed: %s", terminal, rid, attempt + 1, e)
                time.sleep(0.2)
        with self.store.lock:
            self.store.db.execute("UPDATE online_auth SET result='reversed', reason=?, decided=julianday('now')"
                                  " WHERE terminal=? AND request_id=?", (why, terminal, rid))
        self.reversals += 1
        log.info("online %s/%d reversed: %s", terminal, rid, why)

    # -- the table --------------------------------------------------------------------------------

    def _row(self, terminal, rid):
        with self.store.lock:
            return self.store.db.execute(
                "SELECT code_masked, result, reason, approval, reference, family, amount, currency FROM online_auth"
                " WHERE terminal=? AND request_id=?", (terminal, rid)).fetchone()

    def _set(self, terminal, rid, result, reason, approval, rrn, state):
        ms = int((time.monotonic() - state["t0"]) * 1000)
        with self.store.lock:
            self.store.db.execute(
                "UPDATE online_auth SET result=?, reason=?, approval=?, reference=?, answered_ms=?,"
                " decided=julianday('now') WHERE terminal=? AND request_id=? AND result != 'reversed'",
                (result, reason, approval, rrn, ms, terminal, rid))

    def rows(self):
        """Every online authorisation, for the report and tests."""
        with self.store.lock:
            cur = self.store.db.execute(
                "SELECT terminal, request_id, family, code_masked, amount, result, reason, approval, reference,"
                " answered_ms FROM online_auth ORDER BY terminal, request_id")
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self):
        self.pool.shutdown(wait=True)
