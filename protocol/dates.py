"""Calendar dates from the board clock and EMV expiry dates, without the port's time module.

MicroPython ports disagree on the epoch of time.gmtime (1970 or 2000), so the civil date of a count of
seconds since 1970 is computed here (H. Hinnant's days-to-civil algorithm).  EMV dates are BCD: the
Application Expiration Date 5F24 is YYMMDD, track 2 carries YYMM; years 00-49 are 20xx, 50-99 19xx
(EMV Book 4, 6.7.3)."""


def civil(seconds):
    """(year, month, day) in UTC of `seconds` since 1970-01-01."""
    z = seconds // 86400 + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _two_digits(text, i):
    a = ord(text[i]) - 48
    b = ord(text[i + 1]) - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b


def expiry(digits):
    """(year, month, day) of an expiry "YYMMDD" or "YYMM" (valid to the end of that month: day 31);
    None when it is not a date."""
    if len(digits) not in (4, 6):
        return None
    yy = _two_digits(digits, 0)
    month = _two_digits(digits, 2)
    day = _two_digits(digits, 4) if len(digits) == 6 else 31
    if yy < 0 or not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    return (2000 + yy if yy < 50 else 1900 + yy), month, day


def expired(date, seconds):
    """True when the expiry `date` (year, month, day) lies before the UTC day of `seconds`."""
    return date < civil(seconds)


def days(year, month, day):
    """Days since 1970-01-01 of a civil date (the inverse of civil(), in days)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
