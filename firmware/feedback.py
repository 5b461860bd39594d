"""What the passenger sees and hears: one call per outcome, mapped onto the board's outputs.

One LED is lit at a time: each outcome (and the amber ready state) lights its own and switches the
others off, so a decline after an accept shows red alone.  Only a tap that is paid or admitted now
opens the gate; ALREADY PAID shows the earlier tap and never opens it again.
"""

LEDS = ("green", "red", "amber")


def _yuan(fen):
    return "%d.%02d" % (fen // 100, fen % 100)


class Feedback:
    def __init__(self, outputs):
        self.out = outputs
        self.lit = None  # the LED on now; None until the first call sets all of them

    def _light(self, color):
        if color == self.lit:
            return
        for other in LEDS:
            if other != color and (self.lit is None or other == self.lit):
                self.out.led(other, False)
        self.out.led(color, True)
        self.lit = color

    def ready(self):
        self._light("amber")
        self.out.display("READY", "show payment code")

    def accepted(self, amount, seq):
        self._light("green")
        self.out.beep(80, 2700)
        self.out.relay(800)
        self.out.display("PAID " + _yuan(amount), "#%06d" % seq)

    def admitted(self, entry, seq):
        self._light("green")
        self.out.beep(80, 2700)
        self.out.relay(800)
        self.out.display("WELCOME", "entry %d #%06d" % (entry, seq))

    def school(self, boarding, seq):
        """A pupil's pass on the school bus: boarding or alighting recorded; no money, no gate."""
        self._light("green")
        self.out.beep(80, 2700)
        self.out.display("BOARDED" if boarding else "ALIGHTED", "#%06d" % seq)

    def already_paid(self, seq):
        self._light("green")
        self.out.beep(80, 2700)
        self.out.display("ALREADY PAID", "#%06d" % seq)

    def declined(self, reason_text):
        self._light("red")
        self.out.beep(400, 900)
        self.out.display("DECLINED", reason_text)

    def processing(self):
        """A payment code is being authorised online: amber, no beep, until the outcome replaces it."""
        self._light("amber")
        self.out.display("PROCESSING", "please wait")
