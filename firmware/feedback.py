"""What the passenger sees and hears: one call per outcome, mapped onto the board's outputs.

Each outcome has its own LED colour and buzzer pattern, so it is told apart without reading:

    outcome        LED      buzzer                       relay
    ready          amber    -                            -
    processing     amber    -                            -
    accepted       green    1 x 80 ms, 2700 Hz           pulse (paid or admitted now)
    already paid   blue     2 x 60 ms, 2700 Hz           -
    declined       red      1 x 400 ms, 900 Hz           -
    see driver     purple   3 x 150 ms, 900 Hz           -

One colour is lit at a time: each outcome switches the others off, so a decline after an accept shows
red alone.  A board without a blue LED shows blue and purple with the lamps it has (hardware/boards).
"See driver" is a decline the passenger cannot fix by showing the code again: the terminal is not able
to take it now (a fault, full, not set up, no clock, no network) or the card needs attention (PIN).

The screen is four rows of 16 columns (a 128x64 display in 16-pixel glyphs, a CJK character two
columns): Chinese title, English title, Chinese detail, English detail.  The English title and detail
are what the display event and the console have always carried; TITLES and REASON_ZH are the one
table of Chinese texts (tests keep every line within 16 columns).
"""

from protocol import record

LEDS = ("green", "red", "amber", "blue", "purple")
COLUMNS = 16  # display columns per row: an ASCII character one, a CJK character two

# outcome -> (Chinese title, English title)
TITLES = {
    "ready": ("请出示付款码", "READY"),
    "paid": ("已付款", "PAID"),
    "admitted": ("欢迎 请通行", "WELCOME"),
    "already_paid": ("已付过 勿重复", "ALREADY PAID"),
    "declined": ("交易失败", "DECLINED"),
    "see_driver": ("请找司机", "SEE DRIVER"),
    "processing": ("处理中 请稍候", "PROCESSING"),
}
READY_DETAIL = "show your code"
PROCESSING_DETAIL = "please wait"
DISCOUNT_ZH = "立减"  # a promotion's discount: "立减 0.50"
YUAN_ZH = "元"
ENTRY_ZH = "第%d次"  # which entry of a ticket this is
UNKNOWN_ZH = "原因 %d"  # a reason with no Chinese text yet: its number, for the staff to look up

# decline reason -> Chinese text under the title (the English one is record.REASON_TEXT)
REASON_ZH = {
    record.REASON_UNREADABLE: "无法识别",
    record.REASON_TOO_LONG: "码太长",
    record.REASON_UNKNOWN_FORMAT: "无法识别此码",
    record.REASON_DENY_LISTED: "卡已冻结",
    record.REASON_JOURNAL_FULL: "终端存储已满",
    record.REASON_MALFORMED: "付款码无效",
    record.REASON_TICKET_BAD_SIGNATURE: "伪造的票",
    record.REASON_TICKET_UNKNOWN_KEY: "未知出票方",
    record.REASON_TICKET_KEY_REVOKED: "出票方已撤销",
    record.REASON_TICKET_NOT_YET_VALID: "票未生效",
    record.REASON_TICKET_EXPIRED: "票已过期",
    record.REASON_TICKET_USED_UP: "票已用完",
    record.REASON_TICKET_NO_CLOCK: "终端时钟未设",
    record.REASON_TICKET_MALFORMED: "票无效",
    record.REASON_TICKET_REVOKED: "票已作废",
    record.REASON_CARD_READ: "读卡失败",
    record.REASON_CARD_UNSUPPORTED: "不支持此卡",
    record.REASON_CARD_DECLINED: "卡拒绝交易",
    record.REASON_CARD_EXPIRED: "卡已过期",
    record.REASON_CARD_NOT_EFFECTIVE: "卡未生效",
    record.REASON_CARD_CVM: "需要密码",
    record.REASON_CARD_OFFLINE: "卡仅限脱机",
    record.REASON_CARD_REFUSED: "卡拒绝交易",
    record.REASON_CARD_REMOVED: "卡移开过早",
    record.REASON_TERMINAL_ERROR: "终端故障",
    record.REASON_NO_TOKEN_KEY: "终端未设置",
    record.REASON_NO_SEAL_KEY: "终端缺少密钥",
    record.REASON_CPM_BAD_PAN: "卡号无效",
    record.REASON_CPM_EXPIRED: "卡已过期",
    record.REASON_CPM_NO_CRYPTOGRAM: "付款码无效",
    record.REASON_CPM_NO_CID: "付款码无效",
    record.REASON_CPM_AAC: "付款码被拒",
    record.REASON_CPM_NOT_ARQC: "付款码需联机",
    record.REASON_CPM_NO_ATC: "付款码无效",
    record.REASON_CPM_NO_ACCOUNT: "付款码无卡号",
    record.REASON_CPM_NO_EXPIRY: "付款码无效",
    record.REASON_PAYCODE_MALFORMED: "付款码无效",
    record.REASON_PAYCODE_DECLINED: "付款码被拒",
    record.REASON_PAYCODE_NO_ANSWER: "银行无应答",
    record.REASON_PAYCODE_OFFLINE: "需要网络",
    record.REASON_PAYCODE_OVER_CAP: "超出限额",
    record.REASON_RIDE_MALFORMED: "乘车码无效",
    record.REASON_RIDE_NO_CLOCK: "终端时钟未设",
    record.REASON_RIDE_UNKNOWN_ROOT: "未知乘车码",
    record.REASON_RIDE_ISSUER_REVOKED: "发码方已撤销",
    record.REASON_RIDE_ISSUER_SIGNATURE: "发码方伪造",
    record.REASON_RIDE_ISSUER_EXPIRED: "发码方已过期",
    record.REASON_RIDE_USER_SIGNATURE: "账户伪造",
    record.REASON_RIDE_USER_EXPIRED: "账户已过期",
    record.REASON_RIDE_CODE_SIGNATURE: "乘车码伪造",
    record.REASON_RIDE_TOO_OLD: "乘车码已过期",
    record.REASON_RIDE_FUTURE: "乘车码时间错",
    record.REASON_RIDE_ALREADY_USED: "乘车码已使用",
}

# Declines shown as "see driver": the terminal cannot take the credential now, or the card needs attention.
SEE_DRIVER = (
    record.REASON_JOURNAL_FULL,
    record.REASON_TERMINAL_ERROR,
    record.REASON_NO_TOKEN_KEY,
    record.REASON_NO_SEAL_KEY,
    record.REASON_TICKET_NO_CLOCK,
    record.REASON_RIDE_NO_CLOCK,
    record.REASON_PAYCODE_OFFLINE,
    record.REASON_PAYCODE_NO_ANSWER,
    record.REASON_CARD_CVM,
)

# outcome -> (LED colour, buzzer (ms, hz, times), relay ms or 0)
SIGNALS = {
    "ready": ("amber", None, 0),
    "processing": ("amber", None, 0),
    "accepted": ("green", (80, 2700, 1), 800),
    "already_paid": ("blue", (60, 2700, 2), 0),
    "declined": ("red", (400, 900, 1), 0),
    "see_driver": ("purple", (150, 900, 3), 0),
}


def _yuan(fen):
    return "%d.%02d" % (fen // 100, fen % 100)


def columns(s):
    """Display columns of s: two for a CJK (or other wide) character, one for ASCII."""
    n = 0
    for ch in s:
        n += 2 if ord(ch) >= 0x1100 else 1
    return n


def reason_zh(reason):
    text = REASON_ZH.get(reason)
    return text if text is not None else UNKNOWN_ZH % reason


def is_see_driver(reason):
    return reason in SEE_DRIVER


class Feedback:
    def __init__(self, outputs):
        self.out = outputs
        self.lit = None  # the LED colour on now; None until the first call sets all of them

    def _light(self, color):
        if color == self.lit:
            return
        for other in LEDS:
            if other != color and (self.lit is None or other == self.lit):
                self.out.led(other, False)
        self.out.led(color, True)
        self.lit = color

    def _signal(self, outcome):
        color, beep, relay = SIGNALS[outcome]
        self._light(color)
        if beep is not None:
            ms, hz, times = beep
            if times == 1:
                self.out.beep(ms, hz)
            else:
                self.out.beep(ms, hz, times)
        if relay:
            self.out.relay(relay)

    def _show(self, title, detail, detail_zh=""):
        zh, en = TITLES[title]
        self.out.display(en, detail, zh, detail_zh)

    def ready(self):
        self._signal("ready")
        self._show("ready", READY_DETAIL)

    def accepted(self, amount, seq, discount=0):
        """Paid now; `discount`: what a promotion took off the fare (shown as "立减 0.50")."""
        self._signal("accepted")
        zh, en = TITLES["paid"]
        paid = _yuan(amount)
        if discount:
            self.out.display(en + " " + paid, "-%s #%06d" % (_yuan(discount), seq), zh + " " + paid + YUAN_ZH,
                             DISCOUNT_ZH + " " + _yuan(discount))
        else:
            self.out.display(en + " " + paid, "#%06d" % seq, zh + " " + paid + YUAN_ZH, "")

    def admitted(self, entry, seq):
        self._signal("accepted")
        self._show("admitted", "entry %d #%06d" % (entry, seq), ENTRY_ZH % entry)

    def already_paid(self, seq):
        self._signal("already_paid")
        self._show("already_paid", "#%06d" % seq)

    def declined(self, reason_text, reason=None):
        """Declined with its reason; one the passenger cannot fix (SEE_DRIVER) is shown as see_driver."""
        if reason is not None and reason in SEE_DRIVER:
            self.see_driver(reason_text, reason)
            return
        self._signal("declined")
        self._show("declined", reason_text, "" if reason is None else reason_zh(reason))

    def see_driver(self, reason_text, reason=None):
        self._signal("see_driver")
        self._show("see_driver", reason_text, "" if reason is None else reason_zh(reason))

    def processing(self):
        """A payment code is being authorised online: amber, no beep, until the outcome replaces it."""
        self._signal("processing")
        self._show("processing", PROCESSING_DETAIL)


def texts():
    """Every fixed string the screen may show (Chinese and English), for the glyph table the build makes."""
    out = [READY_DETAIL, PROCESSING_DETAIL, DISCOUNT_ZH, YUAN_ZH, ENTRY_ZH, UNKNOWN_ZH]
    for zh, en in TITLES.values():
        out.append(zh)
        out.append(en)
    for text in REASON_ZH.values():
        out.append(text)
    return out
