"""The terminal application: read a credential, decide offline, journal, signal, upload later.

Order matters: a tap is "accepted" (green LED, beep, gate) only after its record is durable in the
journal.  Nothing a peripheral sends may crash the loop: every malformed input becomes a declined tap
with a reason shown on the display.
"""

import asyncio
import gc
import sys

from firmware import decision, identity, trust
from firmware.drivers import scanner
from firmware.feedback import Feedback
from firmware.journal import Journal
from firmware.uplink import Uplink
from protocol import record

SCANNER_BAUD = 9600
UPLINK_BAUD = 115200
WATCHDOG_MS = 8000


class Terminal:
    def __init__(self, board, root):
        self.board = board
        self.terminal = identity.terminal_id(board)
        keyring, self.bad_key_lines = trust.load(root)
        self.decider = decision.Decider(identity.salt(root), keyring=keyring)
        self.journal = Journal(root + "/journal").open()
        for rec in self.journal.recent(decision.RECENT):
            self.decider.remember_record(rec)
        self.feedback = Feedback(board.outputs())
        self.scanner = scanner.Scanner(board.uart("scanner", SCANNER_BAUD))
        self.uplink = Uplink(board.uart("uplink", UPLINK_BAUD), self.journal, self.terminal, board.runtime(), root)

    def handle_line(self, line):
        d = self.decider.decide(line, int(self.board.time_s()))
        if d.outcome == decision.ACCEPT:
            def build(seq):
                return record.encode(self.terminal, seq, int(self.board.time_s()), d.kind, d.amount,
                                     decision.CURRENCY_CNY, record.ACCEPTED, record.REASON_NONE,
                                     d.fare_id, d.token, d.extensions)
            seq = self.journal.append(build)  # durable from here on ...
            self.decider.remember(d.token, d.atc, seq, d.kind)
            if d.kind == record.KIND_TICKET:  # ... and only now the passenger is told
                self.feedback.admitted(d.extensions[0][1][-1], seq)
            else:
                self.feedback.accepted(d.amount, seq)
            self.uplink.wake.set()
            print("tap #%d accepted %d fen" % (seq, d.amount))
        elif d.outcome == decision.ALREADY_PAID:
            self.feedback.already_paid(d.seq)
            print("tap repeats #%d: already paid" % d.seq)
        else:
            self.feedback.declined(d.reason_text())
            print("tap declined: " + d.reason_text())

    async def _feed_watchdog(self):
        # Fed from its own task: if any coroutine blocks the loop, this stops and the board resets.
        wdt = self.board.watchdog(WATCHDOG_MS)
        while True:
            wdt.feed()
            await asyncio.sleep_ms(WATCHDOG_MS // 4)

    async def run(self):
        asyncio.create_task(self._feed_watchdog())
        baud = await self.scanner.setup()
        print("scanner: %s" % ("%d baud" % baud if baud else "no answer, listening at %d baud" % self.scanner.baud))
        ring = self.decider.keyring
        print("ticket keys: %d trusted, %d revoked, %d bad lines" % (len(ring.keys), len(ring.revoked),
                                                                   self.bad_key_lines))
        asyncio.create_task(self.uplink.run())
        self.feedback.ready()
        gc.collect()
        print("ready: terminal %s, journal next #%d, %d to upload, %d damaged, heap %d used %d free"
              % (self.terminal.hex(), self.journal.next_seq, self.journal.depth(), self.journal.dropped,
                 gc.mem_alloc(), gc.mem_free()))
        while True:
            status, line = await self.scanner.read_line()
            try:
                if status == scanner.TOO_LONG:
                    self.feedback.declined(record.REASON_TEXT[record.REASON_TOO_LONG])
                    print("tap declined: line too long")
                else:
                    self.handle_line(line)
            except Exception as e:  # never let one bad tap stop the terminal
                sys.print_exception(e)
                self.feedback.declined("error")


def run(board):
    root = board.mount_flash()
    print("zhifu terminal on " + board.runtime())
    asyncio.run(Terminal(board, root).run())
