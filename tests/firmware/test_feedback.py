"""firmware/feedback.py on both runtimes with an outputs object that records every call: one LED lit at a
time (each outcome and the ready state switch the others off), and only a tap paid or admitted now opens
the gate relay; ALREADY PAID never does."""


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

        def beep(self, ms, hz):
            self.calls.append(("beep", ms, hz))

        def relay(self, ms):
            self.calls.append(("relay", ms))

        def display(self, text, detail=""):
            self.calls.append(("display", text, detail))

    out = Recording()
    fb = Feedback(out)
    got = []
    for step in steps:
        out.calls = []
        name = step[0]
        if name == "ready":
            fb.ready()
        elif name == "accepted":
            fb.accepted(200, 1)
        elif name == "admitted":
            fb.admitted(1, 2)
        elif name == "already_paid":
            fb.already_paid(1)
        else:
            fb.declined("card blocked")
        got.append((out.calls, sorted(c for c, on in out.leds.items() if on)))
    return got


def test_one_led_at_a_time_across_outcomes(runtime):
    steps = [("ready",), ("accepted",), ("declined",), ("accepted",), ("already_paid",), ("declined",),
             ("admitted",), ("ready",), ("declined",), ("declined",)]
    got = runtime.run(body_outcomes, steps)
    lit = [leds for _, leds in got]
    assert lit == [["amber"], ["green"], ["red"], ["green"], ["green"], ["red"], ["green"], ["amber"], ["red"], ["red"]]
    first_calls = got[0][0]
    assert sorted(c[1:] for c in first_calls if c[0] == "led") == [("amber", True), ("green", False), ("red", False)]


def test_only_a_tap_paid_or_admitted_now_opens_the_gate(runtime):
    got = runtime.run(body_outcomes, [("ready",), ("accepted",), ("already_paid",), ("declined",), ("admitted",)])
    relays = [[c for c in calls if c[0] == "relay"] for calls, _ in got]
    assert relays == [[], [("relay", 800)], [], [], [("relay", 800)]]
    assert ("display", "ALREADY PAID", "#000001") in got[2][0]
