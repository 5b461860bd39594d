"""What the passenger sees and hears: one call per outcome, mapped onto the board's outputs.

Each outcome has its own LED colour and buzzer pattern, so it is told apart without reading:

    outcome        LED      buzzer                       relay
    ready          amber    -                            -
    processing     amber    -                            -
    accepted       green    1 x 80 ms, 2700 Hz           pulse (paid or admitted now; none for a pupil)
    already paid   blue     2 x 60 ms, 2700 Hz           -
    declined       red      1 x 400 ms, 900 Hz           -
    see driver     purple   3 x 150 ms, 900 Hz           -

One colour is lit at a time: each outcome switches the others off, so a decline after an accept shows
red alone.  A board without a blue LED shows blue and purple with the lamps it has (hardware/boards).
"See driver" is a decline the passenger cannot fix by showing the code again: the terminal is not able
to take it now (a fault, full, not set up, no clock, no network) or the card needs attention (PIN).

The screen is four rows of 16 columns (a 128x64 display in 16-pixel glyphs, a CJK character two
columns): Chinese title, English title, Chinese detail, English detail.  The English title and detail
are what the display event and the console have always carried.  Every Chinese text is a string
constant in this module (the build's glyph table takes its characters from them, host_sim/tools/glyphs.py),
and tests keep every line within 16 columns.  The decline reasons' Chinese texts are one string, a line
"<reason number> <text>" each (protocol/record.py REASON_*), so the table costs one object of RAM.
"""

from protocol import record

LEDS = ("green", "red", "amber", "blue", "purple")
COLUMNS = 16  # display columns per row: an ASCII character one, a CJK character two

# decline reason -> Chinese text under the title (the English one is record.REASON_TEXT); a reason not
# here shows its number ("原因 95") for the staff to look up.  80-84: offline risk, 95-102: gate and school
# bus (their reasons are numbered in protocol/record.py as those products define them)
REASON_ZH = """
1 无法识别
2 码太长
3 无法识别此码
4 卡已冻结
5 终端存储已满
6 付款码无效
7 伪造的票
8 未知出票方
9 出票方已撤销
10 票未生效
11 票已过期
12 票已用完
13 终端时钟未设
14 票无效
15 票已作废
20 读卡失败
21 不支持此卡
22 卡拒绝交易
23 卡已过期
24 卡未生效
25 需要密码
26 卡仅限脱机
27 卡拒绝交易
28 卡移开过早
30 卡号无效
31 卡已过期
32 付款码无效
33 付款码无效
34 付款码被拒
35 付款码需联机
36 付款码无效
37 付款码无卡号
38 付款码无效
40 终端故障
41 终端缺少密钥
42 终端未设置
43 付款码无效
44 付款码被拒
45 银行无应答
46 需要网络
47 超出限额
60 乘车码无效
61 终端时钟未设
62 未知乘车码
63 发码方已撤销
64 发码方伪造
65 发码方已过期
66 账户伪造
67 账户已过期
68 乘车码伪造
69 乘车码已过期
70 乘车码时间错
71 乘车码已使用
80 付款码已使用
81 今日次数已满
82 今日金额超限
83 新卡次数超限
84 新卡金额超限
95 请稍后再进
96 不在名单中
97 无学生名单
98 今日无乘车
99 已扫过
100 非学生卡
101 已在他处使用
102 仅限学生卡
"""

# Declines shown as "see driver": the terminal cannot take the credential now, or the card needs attention.
SEE_DRIVER = (record.REASON_JOURNAL_FULL, record.REASON_TERMINAL_ERROR, record.REASON_NO_TOKEN_KEY,
              record.REASON_NO_SEAL_KEY, record.REASON_TICKET_NO_CLOCK, record.REASON_RIDE_NO_CLOCK,
              record.REASON_PAYCODE_OFFLINE, record.REASON_PAYCODE_NO_ANSWER, record.REASON_CARD_CVM,
              record.REASON_NO_ROSTER)


def _yuan(fen):
    return "%d.%02d" % (fen // 100, fen % 100)


def reason_zh(reason):
    """The Chinese text of a decline reason, or its number when the table has none."""
    key = "\n%d " % reason
    at = REASON_ZH.find(key)
    if at < 0:
        return "原因 %d" % reason
    at += len(key)
    return REASON_ZH[at:REASON_ZH.find("\n", at)]


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

    def _beep(self, ms, hz, times):
        if times == 1:
            self.out.beep(ms, hz)
        else:
            self.out.beep(ms, hz, times)

    def ready(self):
        self._light("amber")
        self.out.display("READY", "show your code", "请出示付款码", "")

    def accepted(self, amount, seq, discount=0):
        """Paid now; `discount`: what a promotion took off the fare (shown as "立减 0.50")."""
        self._light("green")
        self._beep(80, 2700, 1)
        self.out.relay(800)
        paid = _yuan(amount)
        if discount:
            self.out.display("PAID " + paid, "-%s #%06d" % (_yuan(discount), seq), "已付款 " + paid + "元",
                             "立减 " + _yuan(discount))
        else:
            self.out.display("PAID " + paid, "#%06d" % seq, "已付款 " + paid + "元", "")

    def admitted(self, entry, seq):
        self._light("green")
        self._beep(80, 2700, 1)
        self.out.relay(800)
        self.out.display("WELCOME", "entry %d #%06d" % (entry, seq), "欢迎 请通行", "第%d次" % entry)

    def school(self, boarding, seq):
        """A pupil's pass on the school bus: boarding or alighting recorded; no money, no gate."""
        self._light("green")
        self._beep(80, 2700, 1)
        if boarding:
            self.out.display("BOARDED", "#%06d" % seq, "已上车", "")
        else:
            self.out.display("ALIGHTED", "#%06d" % seq, "已下车", "")

    def already_paid(self, seq):
        self._light("blue")
        self._beep(60, 2700, 2)
        self.out.display("ALREADY PAID", "#%06d" % seq, "已付过 勿重复", "")

    def declined(self, reason_text, reason=None):
        """Declined with its reason; one the passenger cannot fix (SEE_DRIVER) is shown as see_driver."""
        if reason is not None and reason in SEE_DRIVER:
            self.see_driver(reason_text, reason)
            return
        self._light("red")
        self._beep(400, 900, 1)
        self.out.display("DECLINED", reason_text, "交易失败", "" if reason is None else reason_zh(reason))

    def see_driver(self, reason_text, reason=None):
        self._light("purple")
        self._beep(150, 900, 3)
        self.out.display("SEE DRIVER", reason_text, "请找司机", "" if reason is None else reason_zh(reason))

    def processing(self):
        """A payment code is being authorised online: amber, no beep, until the outcome replaces it."""
        self._light("amber")
        self.out.display("PROCESSING", "please wait", "处理中 请稍候", "")
