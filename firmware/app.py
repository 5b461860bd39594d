"""The terminal application: read a credential, decide offline, journal, signal, upload later.

Order matters: a tap is "accepted" (green LED, beep, gate) only after its record is durable in the
journal.  Nothing a peripheral sends may crash the loop: every malformed input becomes a declined tap
with a reason shown on the display.
"""

import asyncio
import gc
import sys
import time

from firmware import console, decision, declines, denylist, eventlog, health, identity, tapstate
from firmware.config import trust
from firmware.drivers import pn532, scanner
from firmware.feedback import Feedback
from firmware.journal import Journal, JournalFull
from firmware.uplink import Uplink
from protocol import crypto, link, record

SCANNER_BAUD = 9600
WATCHDOG_MS = 8000
IDLE_MS = 300  # the journal erases ahead (a CPU stall) only after this long without a tap
ONLINE_DEADLINE_MS = 2000  # default wait for a payment code's ONLINE_RESULT (uplink.json "online_deadline_ms")


class Terminal:
    def __init__(self, board, root):
        self.board = board
        self.root = root
        self.terminal = identity.terminal_id(board)
        self.log = eventlog.active()  # /flash/log, written while idle (firmware/eventlog.py)
        keyring, self.bad_key_lines = trust.load(root)
        salt = identity.salt(root)
        self.deny = self._load_deny_list(root)
        self.decider = decision.Decider(identity.token_key(root), keyring=keyring, deny=self.deny)
        self.decider.flash_root = root  # ride-code roots are read from here on the first ride code
        if trust.has_fleet_bundles(root):
            from firmware.config import fleet
            from protocol.fleet import KIND_FARES, KIND_PROFILE, KIND_ROSTER

            self.decider.use(KIND_FARES, fleet.load_fares(root))
            self.decider.use(KIND_PROFILE, fleet.load_profile(root))
            roster = fleet.load(root, KIND_ROSTER)  # a school bus's roster of student passes
            if roster is not None:
                self.decider.use(KIND_ROSTER, roster[1])
        self.journal = Journal(board.journal_partition(), crypto.derive(salt, b"journal mac")).open()
        self.decider.sealer = self._host_sealer(root)
        self._last_tap = time.ticks_ms()
        self._promotions(root)
        for rec in self.journal.recent(decision.RECENT):
            self.decider.remember_record(rec)
        self.decider.state = self._load_state(root)  # durable per-credential state, caught up with the journal
        self.declines = declines.Declines(self.journal, self.terminal, decision.CURRENCY_CNY)
        self.feedback = Feedback(board.outputs())
        self.scanner = scanner.Scanner(board.uart("scanner", SCANNER_BAUD))
        self.health = health.Health()  # scanner and NFC bits of STATUS
        self.uplink = Uplink(board, self.journal, self.terminal, root, deny=self.deny, devices=self.health,
                             on_config=self._use_config)
        self.online = online_config(root)  # (deadline ms, offline policy, per-code cap in fen)
        self._profile(False)
        self._authorising = False  # a payment code waits for the host: no erase-ahead stall now
        self.nfc = None  # the NFC task, when a PN532 is wired

    def _host_sealer(self, root):
        """The sealer to the collector's public key, its first epoch key wrapped now (boot, not a tap);
        None without /flash/keys/seal.pub: card taps then decline with "no host key"."""
        from firmware import sealing

        n = sealing.load_host_key(root)
        if n is None:
            print("seal key: none, card payments declined")
            return None
        sealer = sealing.Sealer(n, self.journal, self.terminal, self.board.time_s)
        sealer.prepare()
        return sealer

    def _load_state(self, root):
        """Per-credential state (firmware/tapstate.py), brought up to the journal: taps journalled but
        not yet in the state (a power cut between the two) are applied now.  None if flash refuses it."""
        try:
            state = tapstate.TapState(root)
            state.replay(self.journal, self.decider.account)
        except OSError as e:  # offline risk off until the next boot; taps still decided and journalled
            print("tap state: %s" % e)
            return None
        return state

    def _promotions(self, root):
        """The promotions' draws and budgets, keyed from the device key; none before provisioning."""
        from firmware import uplink

        key = uplink.read_key(root + "/" + uplink.KEY_FILE)
        if key is not None:
            self.decider.load_promotions(root, key)

    @staticmethod
    def _load_deny_list(root):
        try:
            return denylist.DenyList(root + "/config/deny.bin")
        except denylist.DenyListError as e:  # reported; the next config session brings a good copy
            print("deny list: %s" % e)
            return None

    def _use_config(self, kind, content):
        """A fleet bundle (fares, ticket keys, token key, profile) was just activated: the next tap uses it,
        no reboot."""
        self.decider.use(kind, content)
        if kind == 6:  # protocol/fleet.py KIND_PROFILE
            self._profile(True)

    def _profile(self, running):
        """What the active profile needs besides the decider (a bus: its stops and GPS, firmware/bus.py)."""
        p = self.decider.active.profile
        if p is not None and "bus" in p or self.decider.bus_stops is not None:
            from firmware import bus

            bus.setup(self.decider, self.board, self.feedback, running)

    def handle_line(self, line):
        self.apply(self.decider.decide(line, int(self.board.time_s())))

    async def handle_scan(self, line):
        """A scanner line; a payment code is authorised online (or by the offline policy) first."""
        d = self.decider.decide(line, int(self.board.time_s()))
        if d.outcome == decision.ONLINE:
            d = await self._authorise(d)
        self.apply(d)

    async def _authorise(self, d):
        """Ask the host about a payment code (uplink ONLINE_REQUEST), showing "processing" meanwhile;
        with the link down the offline policy decides.  The request id is the journal sequence the
        tap's record will take: unique per terminal across reboots once that record is journalled."""
        deadline, policy, cap = self.online
        if not self.uplink.online_ready():
            return self.decider.decide_offline(d, policy, cap)
        self._authorising = True
        self.feedback.processing()
        try:
            rid = self.journal.next_seq
            t0 = time.ticks_ms()
            result = await self.uplink.authorise(rid, d.code[0], d.amount, decision.CURRENCY_CNY, deadline,
                                                 d.code[1])
            print("payment code: request %d answered in %d ms" % (rid, time.ticks_diff(time.ticks_ms(), t0)))
            return self.decider.decide_online(d, rid, result)
        finally:
            self._authorising = False
            self._last_tap = time.ticks_ms()

    def _decline(self, d, detail):
        """Tell the passenger at once, then journal the decline (firmware/declines.py: which ones get a record)."""
        self._last_tap = time.ticks_ms()
        self.feedback.declined(d.reason_text(), d.reason)
        got = self.declines.add(d.kind, d.reason, d.token, int(self.board.time_s()), time.ticks_ms())
        if got == declines.RECORDED:
            print("tap declined: %s (record #%d)" % (detail, self.declines.seq))
        else:
            print("tap declined: %s (%s; %d unrecorded)" % (detail, declines.OUTCOME_TEXT[got],
                                                            self.declines.unrecorded))

    def apply(self, d, detail=None):
        """Carry out a decision (firmware/decision.py owns every outcome): journal an accepted tap, then tell
        the passenger; the same for QR codes and NFC taps.  `detail`: what the console says of a decline."""
        self._last_tap = time.ticks_ms()
        if d.outcome == decision.ACCEPT:
            now = int(self.board.time_s())
            offers = self.decider.promotion_offers(d, now)
            won = None

            def build(seq):
                nonlocal won
                if offers:  # the draw is over the record's own fields, so it happens as the record is made
                    won = self.decider.promote(d, offers, self.terminal, seq, now)
                return record.encode(self.terminal, seq, now, d.kind, d.amount,
                                     decision.CURRENCY_CNY, record.ACCEPTED, record.REASON_NONE,
                                     d.fare_id, d.token, d.extensions)
            try:
                if self.journal.full:
                    raise JournalFull()
                seq = self.journal.append(build)  # durable from here on ...
            except JournalFull:  # never overwrite what the host has not acknowledged
                self._decline(self.decider.decide_journal_full(d), "journal full, %d records wait for the host"
                              % self.journal.depth())
                return
            self.decider.remember(d.token, d.atc, seq, d.kind)
            if d.state is not None and self.decider.state is None:  # no durable state: firmware/gate.py's RAM
                from firmware import gate

                gate.commit(self.decider, d.token, d.state, seq)
            if d.kind == record.KIND_TICKET:  # ... and only now the passenger is told
                self.feedback.admitted(d.entry, seq)
            elif d.kind == record.KIND_SCHOOL_PASS:
                self.feedback.school(d.entry == record.SCHOOL_BOARD, seq)
            else:
                self.feedback.accepted(d.amount, seq, d.discount)
            if d.risk is not None:  # a payment credential's counts, after the journal and the passenger
                from firmware import risk  # loaded already: its check gave d.risk

                risk.commit(self.decider, d, seq, int(self.board.time_s()))
            state = self.decider.state
            if state is not None and d.state is not None:  # a ticket's or pass's entry (firmware/gate.py)
                state.put(d.token, d.state, seq)
            self.uplink.wake.set()
            promos = self.decider.promotions
            if won is not None and promos is not None:  # counted against the terminal's budget once told
                promos.spend(won[0], won[1], promos.local_day(self.decider.active.profile, now), seq)
                print("tap #%d accepted %d fen, promotion %d took %d off" % (seq, d.amount, won[0], won[1]))
            else:
                print("tap #%d accepted %d fen" % (seq, d.amount))
        elif d.outcome == decision.ALREADY_PAID:
            self.feedback.already_paid(d.seq)
            print("tap repeats #%d: already paid" % d.seq)
        elif d.kind == record.KIND_PAYMENT_CODE and d.extensions:
            self._decline_online(d)
        else:
            self._decline(d, detail or d.reason_text())

    def _decline_online(self, d):
        """A payment code declined after its ONLINE_REQUEST: always its own record (never coalesced),
        naming the request, so the host reverses an approval that came too late."""
        self.feedback.declined(d.reason_text(), d.reason)

        def build(seq):
            return record.encode(self.terminal, seq, int(self.board.time_s()), d.kind, 0,
                                 decision.CURRENCY_CNY, record.DECLINED, d.reason, 0, d.token, d.extensions)
        try:
            if self.journal.full:
                raise JournalFull()
            seq = self.journal.append(build)
        except JournalFull:
            print("tap declined: %s (journal full, unrecorded)" % d.reason_text())
            return
        self.uplink.wake.set()
        print("tap declined: %s (record #%d)" % (d.reason_text(), seq))

    async def _feed_watchdog(self):
        # Fed from its own task: if any coroutine blocks the loop, this stops and the board resets.
        wdt = self.board.watchdog(WATCHDOG_MS)
        while True:
            wdt.feed()
            await asyncio.sleep_ms(WATCHDOG_MS // 4)

    def _start_nfc(self):
        try:
            dev = pn532.for_board(self.board)
        except OSError as e:  # the board names an NFC port that is not wired here
            print("nfc: " + str(e))
            return
        if dev is not None:
            from firmware.nfc import NfcTask

            self.nfc = NfcTask(CardTaps(self), dev, self.health)
            asyncio.create_task(self.nfc.run())

    async def _prepare_journal(self):
        # Erasing ahead stalls the CPU (45-400 ms on NOR flash): only while no passenger is waiting.
        while True:
            await asyncio.sleep_ms(IDLE_MS)
            if not self._authorising and time.ticks_diff(time.ticks_ms(), self._last_tap) >= IDLE_MS:
                self.journal.prepare()
                if self.log is not None:
                    self.log.flush()
                try:
                    if self.decider.sealer is not None:
                        self.decider.sealer.prepare()  # the next epoch key's RSA wrap, while nobody waits
                    self.decider.prepare_idle()  # a new ride-code issuer's key table
                except Exception as e:  # out of memory, say: the next idle moment tries again
                    sys.print_exception(e)

    async def run(self):
        asyncio.create_task(self._feed_watchdog())
        asyncio.create_task(self._prepare_journal())
        baud = await self.scanner.setup()
        print("scanner: %s" % ("%d baud" % baud if baud else "no answer, listening at %d baud" % self.scanner.baud))
        if baud:
            self.health.ok(link.HEALTH_SCANNER)
        asyncio.create_task(health.watch_scanner(self.scanner, self.health))
        ring = self.decider.active.keyring
        print("ticket keys: %d trusted, %d revoked, %d bad lines" % (len(ring.keys), len(ring.revoked),
                                                                   self.bad_key_lines))
        if self.deny is not None:
            print("deny list: version %d, %d cards" % (self.deny.version, self.deny.count))
        held = self.decider.active.token_key
        print("token key: " + ("version %d" % held[0] if held else "none, payment taps decline"))
        asyncio.create_task(self.uplink.run())
        self._profile(True)
        asyncio.create_task(console.Console(self).run(console.console_stream()))
        gc.collect()  # the NFC stack loads next and needs its room in one piece
        self._start_nfc()
        self.feedback.ready()
        if self.log is not None:
            self.log.flush()  # the boot lines, before any passenger waits
        gc.collect()
        j = self.journal
        print("ready: terminal %s, journal next #%d, %d to upload, %d damaged, %d bytes free%s, heap %d used %d free"
              % (self.terminal.hex(), j.next_seq, j.depth(), j.dropped, j.free, " (FULL)" if j.full else "",
                 gc.mem_alloc(), gc.mem_free()))
        while True:
            status, line = await self.scanner.read_line()
            try:
                if status == scanner.TOO_LONG:
                    self.apply(self.decider.decide_too_long(), "line too long")
                else:
                    await self.handle_scan(line)
            except Exception as e:  # never let one bad tap stop the terminal
                sys.print_exception(e)
                self._failed()

    def _failed(self):
        try:
            self.apply(self.decider.decide_failure(), "terminal error")
        except Exception as e:  # the journal itself failed: the passenger still hears the decline
            sys.print_exception(e)
            self.feedback.declined("terminal error", record.REASON_TERMINAL_ERROR)


def online_config(root):
    """(deadline ms, offline policy, per-code cap fen) for payment codes from /flash/config/uplink.json:
    "online_deadline_ms" (default 2000, 200..10000), "offline_policy" ("decline" default, or "defer"),
    "defer_cap_fen" (default 0: nothing deferred)."""
    from firmware import uplink

    cfg = uplink.load_config(root)
    deadline = cfg.get("online_deadline_ms", ONLINE_DEADLINE_MS)
    if not isinstance(deadline, int) or not uplink.ONLINE_DEADLINE_MIN_MS <= deadline <= uplink.ONLINE_DEADLINE_MAX_MS:
        print("uplink.json: online_deadline_ms %r outside %d..%d; using %d" % (
            deadline, uplink.ONLINE_DEADLINE_MIN_MS, uplink.ONLINE_DEADLINE_MAX_MS, ONLINE_DEADLINE_MS))
        deadline = ONLINE_DEADLINE_MS
    policy = cfg.get("offline_policy", decision.POLICY_DECLINE)
    if policy not in (decision.POLICY_DECLINE, decision.POLICY_DEFER):
        print("uplink.json: offline_policy %r unknown; declining payment codes offline" % (policy,))
        policy = decision.POLICY_DECLINE
    cap = cfg.get("defer_cap_fen", 0)
    if not isinstance(cap, int) or cap < 0:
        cap = 0
    return deadline, policy, cap


class CardTaps:
    """All the NFC task may do with the terminal: ask the amount a card is asked to sign (the one the
    record charges), and have a card read, or a read that failed, decided and carried out."""

    def __init__(self, terminal):
        self._terminal = terminal

    def amount(self):
        return self._terminal.decider.amount_for(record.KIND_EMV_CONTACTLESS)

    def now(self):
        return int(self._terminal.board.time_s())

    def read(self, card):
        t = self._terminal
        now = self.now()
        t.apply(t.decider.priced(t.decider.decide_emv(card, now), now))

    def failed(self, code, detail):
        t = self._terminal
        t.apply(t.decider.decide_card_error(code), detail)


def run(board):
    root = board.mount_flash()
    eventlog.capture(eventlog.EventLog(root, board.time_s))
    print("zhifu terminal on " + board.runtime())
    from firmware import keystore

    keystore.use(board.secret())  # the keys on flash are wrapped under it
    if keystore.seal_clear(root):
        print("keys: wrapped under the board secret")
    try:
        asyncio.run(Terminal(board, root).run())
    except console.ServiceMode:
        board.hold_watchdog()
        print("service mode: terminal stopped, REPL open")
