"""firmware/feedback.py on both runtimes with an outputs object that records every call: one LED colour lit
at a time (each outcome and the ready state switch the others off), only a tap paid or admitted now opens
the gate relay (ALREADY PAID never does), accepted / already paid / declined / see driver each have their
own colour and buzzer pattern, and every screen line, Chinese or English, fits 16 columns of a 128x64
display in 16-pixel glyphs."""

from protocol import record


def body_outcomes(steps):
    """Feedback over a recording outputs object; per step the calls it made and which LEDs are lit after it."""
    from firmware.feedback import Feedback

    class Recording:
        def __init__(self):
            self.calls = []
            self.leds = {}

        def led(self, color, on):
            self.calls.append(("led", color, on))
            self.leds[color] = on

        def beep(self, ms, hz, times=1):
            self.calls.append(("beep", ms, hz, times))

        def relay(self, ms):
            self.calls.append(("relay", ms))

        def display(self, text, detail="", text_zh="", detail_zh=""):
            self.calls.append(("display", text, detail, text_zh, detail_zh))

    out = Recording()
    fb = Feedback(out)
    got = []
    for step in steps:
        out.calls = []
        name = step[0]
        if name == "ready":
            fb.ready()
        elif name == "processing":
            fb.processing()
        elif name == "accepted":
            fb.accepted(step[1] if len(step) > 1 else 200, 1, step[2] if len(step) > 2 else 0)
        elif name == "admitted":
            fb.admitted(1, 2)
        elif name == "school":
            fb.school(step[1], 3)
        elif name == "already_paid":
            fb.already_paid(1)
        elif name == "see_driver":
            fb.see_driver("terminal error")
        elif name == "declined_reason":
            fb.declined(step[2], step[1])
        else:
            fb.declined("card blocked")
        got.append((out.calls, sorted(c for c, on in out.leds.items() if on)))
    return got


def body_reason_zh(reasons):
    from firmware.feedback import reason_zh

    return [reason_zh(r) for r in reasons]


def columns(s):
    """Display columns of s: two for a CJK (wide) character, one for ASCII."""
    return sum(2 if ord(ch) >= 0x1100 else 1 for ch in s)


def table_reasons():
    from firmware import feedback

    return [int(line.split(" ", 1)[0]) for line in feedback.REASON_ZH.strip().splitlines()]


def test_one_led_at_a_time_across_outcomes(runtime):
    steps = [("ready",), ("accepted",), ("declined",), ("accepted",), ("already_paid",), ("declined",),
             ("admitted",), ("ready",), ("see_driver",), ("declined",), ("declined",)]
    got = runtime.run(body_outcomes, steps)
    lit = [leds for _, leds in got]
    assert lit == [["amber"], ["green"], ["red"], ["green"], ["blue"], ["red"], ["green"], ["amber"], ["purple"],
                   ["red"], ["red"]]
    first_calls = got[0][0]
    assert sorted(c[1:] for c in first_calls if c[0] == "led") == [
        ("amber", True), ("blue", False), ("green", False), ("purple", False), ("red", False)]


def test_only_a_tap_paid_or_admitted_now_opens_the_gate(runtime):
    got = runtime.run(body_outcomes, [("ready",), ("accepted",), ("already_paid",), ("declined",), ("admitted",),
                                      ("see_driver",)])
    relays = [[c for c in calls if c[0] == "relay"] for calls, _ in got]
    assert relays == [[], [("relay", 800)], [], [], [("relay", 800)], []]
    assert ("display", "ALREADY PAID", "#000001", "已付过 勿重复", "") in got[2][0]


def test_a_pupil_boarding_or_alighting_is_green_without_the_gate(runtime):
    got = runtime.run(body_outcomes, [("school", True), ("school", False)])
    assert [[c[1:] for c in calls if c[0] in ("display", "relay")] for calls, _ in got] == [
        [("BOARDED", "#000003", "已上车", "")], [("ALIGHTED", "#000003", "已下车", "")]]
    assert [leds for _, leds in got] == [["green"], ["green"]]


def test_accepted_already_paid_declined_and_see_driver_are_told_apart(runtime):
    got = runtime.run(body_outcomes, [("accepted",), ("already_paid",), ("declined",), ("see_driver",)])
    signals = [([c[1:] for c in calls if c[0] == "beep"], leds) for calls, leds in got]
    assert signals == [([(80, 2700, 1)], ["green"]), ([(60, 2700, 2)], ["blue"]), ([(400, 900, 1)], ["red"]),
                       ([(150, 900, 3)], ["purple"])]


def test_a_decline_the_passenger_cannot_fix_says_see_driver(runtime):
    steps = [("declined_reason", record.REASON_JOURNAL_FULL, "terminal full"),
             ("declined_reason", record.REASON_DENY_LISTED, "card blocked"),
             ("declined_reason", 250, "new reason")]
    got = runtime.run(body_outcomes, steps)
    shown = [[c[1:] for c in calls if c[0] == "display"][0] for calls, _ in got]
    assert shown == [("SEE DRIVER", "terminal full", "请找司机", "终端存储已满"),
                     ("DECLINED", "card blocked", "交易失败", "卡已冻结"),
                     ("DECLINED", "new reason", "交易失败", "原因 250")]  # a reason without Chinese text: its number
    assert got[0][1] == ["purple"] and got[1][1] == ["red"]


def test_paid_shows_the_promotion_discount(runtime):
    got = runtime.run(body_outcomes, [("accepted", 150, 50), ("accepted", 200, 0)])
    shown = [[c[1:] for c in calls if c[0] == "display"][0] for calls, _ in got]
    assert shown == [("PAID 1.50", "-0.50 #000001", "已付款 1.50元", "立减 0.50"),
                     ("PAID 2.00", "#000001", "已付款 2.00元", "")]


def test_every_screen_line_fits_16_columns(runtime):
    from firmware import feedback

    steps = [("ready",), ("processing",), ("accepted", 99999, 9999), ("admitted",), ("already_paid",),
             ("see_driver",), ("school", True), ("school", False)]
    steps += [("declined_reason", reason, "") for reason in table_reasons()]
    got = runtime.run(body_outcomes, steps)
    lines = []
    for calls, _ in got:
        for c in calls:
            if c[0] == "display":
                lines += [s for s in c[1:] if s]
    assert len(lines) > 2 * len(steps)
    too_wide = [(s, columns(s)) for s in lines if columns(s) > feedback.COLUMNS]
    assert too_wide == []
    assert [columns(s) for s in ("已付款 2.00元", "PAID 2.00")] == [13, 9]  # a CJK character is 2 columns


def test_the_reason_table_reads_back_on_both_runtimes(runtime):
    reasons = table_reasons()
    got = runtime.run(body_reason_zh, reasons + [record.REASON_DENY_LISTED, 0, 255])
    assert got[-3:] == ["卡已冻结", "原因 0", "原因 255"]
    assert all(text and "\n" not in text and not text.startswith("原因") for text in got[:-3])
    assert len(reasons) == len(set(reasons))


def test_every_reason_the_terminal_knows_has_chinese_text():
    assert sorted(set(record.REASON_TEXT) - set(table_reasons()) - {record.REASON_NONE}) == []
