"""The Luhn check digit (ISO/IEC 7812-1) that closes every payment card number."""


def valid(digits):
    """True when the decimal string `digits` ends in its correct Luhn check digit."""
    if not digits:
        return False
    total = 0
    double = False
    for i in range(len(digits) - 1, -1, -1):
        d = ord(digits[i]) - 48
        if d < 0 or d > 9:
            return False
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0
