"""protocol/luhn.py on both runtimes: known card numbers, every single-digit change caught, non-digits
refused, and agreement with an independent implementation on generated numbers."""

from hypothesis import strategies as st
from runtimes import draw_examples


def body_valid(numbers):
    from protocol import luhn

    return [luhn.valid(n) for n in numbers]


def reference(digits):
    total = sum(int(d) if i % 2 == 0 else sum(divmod(int(d) * 2, 10)) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def test_known_numbers(runtime):
    good = ["79927398713", "6228480000000000018", "4761739001010010", "5413330089010434", "6263600100713672", "0"]
    bad = ["79927398710", "6212345678901234567", "4761739001010011", "", "62284800000000000l8", "6228 4800"]
    assert runtime.run(body_valid, good + bad) == [True] * len(good) + [False] * len(bad)


def test_every_single_digit_change_is_caught(runtime):
    pan = "6228480000000000018"
    changed = [pan[:i] + d + pan[i + 1:] for i in range(len(pan)) for d in "0123456789" if d != pan[i]]
    assert runtime.run(body_valid, changed) == [False] * len(changed)


def test_agrees_with_a_reference(runtime):
    numbers = draw_examples(st.text("0123456789", min_size=1, max_size=19), count=200)
    assert runtime.run(body_valid, numbers) == [reference(n) for n in numbers]
