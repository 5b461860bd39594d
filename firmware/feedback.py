"""What the passenger sees and hears: one call per outcome, mapped onto the board's outputs."""


def _yuan(fen):
    return "%d.%02d" % (fen // 100, fen % 100)


class Feedback:
    def __init__(self, outputs):
        self.out = outputs

    def ready(self):
        self.out.led("amber", False)
        self.out.display("READY", "show payment code")

    def accepted(self, amount, seq):
        self.out.led("green", True)
        self.out.beep(80, 2700)
        self.out.relay(800)
        self.out.display("PAID " + _yuan(amount), "#%06d" % seq)

    def admitted(self, entry, seq):
        self.out.led("green", True)
        self.out.beep(80, 2700)
        self.out.relay(800)
        self.out.display("WELCOME", "entry %d #%06d" % (entry, seq))

    def already_paid(self, seq):
        self.out.led("green", True)
        self.out.beep(80, 2700)
        self.out.relay(800)
        self.out.display("ALREADY PAID", "#%06d" % seq)

    def declined(self, reason_text):
        self.out.led("red", True)
        self.out.beep(400, 900)
        self.out.display("DECLINED", reason_text)
