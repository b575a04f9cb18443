"""Dates and datetimes as exports write them, one pattern per column.

ISO 8601 is typed by ``streaming.coerce`` on its fast path; this module reads the rest:
``2012/01/01``, ``2024.03.31``, ``31.03.2024``, ``31/03/2024``, ``3/31/2024`` (one- or two-digit
day and month; ``/``, ``.`` or ``-`` between them), ``Jan 1 2000`` and ``1 Jan 2000`` (an
English month's name or its first three letters, any case, with single spaces: ``%b %d %Y``,
``%d %b %Y``), optionally followed by a time after a space
or ``T``: ``H:MM``, seconds and fractions optional, ``AM``/``PM``, and an offset (``+0100``,
``-05:00``, `` -0500``, ``Z``, ``UTC``) that converts the value to UTC, as ISO values are.

A column's pattern is chosen from its first batch, written strftime-style (``%d/%m/%Y``,
``%m/%d/%Y %I:%M %p``). In ``NN/NN/YYYY`` the values decide the order: a first part over 12
means day first, a second part over 12 month first, both: not a date. When no value decides,
the order is a default (``DATE_ORDER``; day first for dotted dates, which nobody writes month
first), and the pattern is marked *undecided* with a leading ``?`` so that a later batch that
decides the other way can still take the column (``streaming.coerce.join``).

Values are read by one regular expression over the whole batch, then once per distinct value
(a date column repeats its values), and written as ISO 8601, as ISO input is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

UNDECIDED = "?"
ORDERS = ("mdy", "dmy")

# The first value's date part: year first or year last, one separator used twice.
_HEAD = re.compile(r"([0-9]{1,4})([/.-])([0-9]{1,2})\2([0-9]{1,4})(?=$|[ T])")
# The first value's time part, to choose the pattern (the pattern's own expression reads it).
_CLOCK = re.compile(
    r"([ T])[0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,6})?)?(?:( ?)([AaPp][Mm]))?"
    r"(?:( ?)(Z|UTC|GMT|[+-][0-9]{2}:?[0-9]{2}))?"
)
_ANY_CLOCK = re.compile(r"[ T][0-9]{1,2}:[0-9]{2}")
# A date with its month's name: month first (Jan 1 2000) or day first (1 Jan 2000).
_NAMED = (
    (re.compile(r"([A-Za-z]{3,9}) [0-9]{1,2} [0-9]{4}(?=$|[ T])"), "%b %d %Y"),
    (re.compile(r"[0-9]{1,2} ([A-Za-z]{3,9}) [0-9]{4}(?=$|[ T])"), "%d %b %Y"),
)
_MONTH_NAMES = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
MONTHS: dict[str, int] = {
    **{name: i + 1 for i, name in enumerate(_MONTH_NAMES)},
    **{name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)},
    "sept": 9,
}
_FIELDS = {
    "%Y": r"(?P<Y>[0-9]{4})",
    "%m": r"(?P<m>[0-9]{1,2})",
    "%d": r"(?P<d>[0-9]{1,2})",
    "%b": r"(?P<b>[A-Za-z]{3,9})",
    "%H": r"(?P<H>[0-9]{1,2})",
    "%I": r"(?P<I>[0-9]{1,2})",
    "%M": r"(?P<M>[0-9]{2})",
    ":%S": r"(?::(?P<S>[0-9]{2}))?",
    ".%f": r"(?:[.,](?P<f>[0-9]{1,6}))?",
    " %p": r" ?(?P<p>[AaPp][Mm])",
    "%p": r" ?(?P<p>[AaPp][Mm])",
    " %z": r" ?(?P<z>Z|[+-][0-9]{2}:?[0-9]{2})",
    "%z": r" ?(?P<z>Z|[+-][0-9]{2}:?[0-9]{2})",
    " %Z": r" ?(?P<z>UTC|GMT)",
    "%Z": r" ?(?P<z>UTC|GMT)",
}
_TOKEN = re.compile(r" %[pzZ]|:%S|\.%f|%[A-Za-z]|.", re.S)
DATE_LENGTH = len("%Y/%m/%d")  # every date pattern: three fields and two separators


class NotInPattern(ValueError):
    """A value of the batch is not written in the pattern, or is not a real date."""


def format_of(notation: str) -> str:
    """The strftime-style pattern a column's metadata shows."""
    return notation.removeprefix(UNDECIDED)


def swapped(notation: str) -> str:
    """The same pattern with day and month the other way round."""
    return notation.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def guesses(texts: list[str], order: str) -> list[tuple[str, str]]:
    """(type, pattern) pairs the batch may be written in: judged from its first value, and
    if that is a date alone, from the first value with a time too (dates among datetimes make
    a datetime column, as in ISO). Only candidates: reading the batch with one decides."""
    found = guess(texts[0], texts, order)
    if found is None or found[0] == "datetime":
        return [found] if found else []
    clock = _ANY_CLOCK.search("\n".join(texts))
    if clock is None:
        return [found]
    joined = "\n".join(texts)
    start = joined.rfind("\n", 0, clock.start()) + 1
    end = joined.find("\n", clock.end())
    timed = guess(joined[start : end if end != -1 else len(joined)], texts, order)
    return [found] + ([timed] if timed else [])


def guess(first: str, texts: list[str], order: str) -> tuple[str, str] | None:
    """(type, pattern) of one value, with the day/month order judged from all the batch's
    values; None when it is not a date at all."""
    head = _HEAD.match(first)
    if head is None:
        named = _named(first)
        if named is None:
            return None
        date_part, end = named
    else:
        one, sep, _, three = head.groups()
        if len(one) == 4:
            date_part = f"%Y{sep}%m{sep}%d"
        elif len(three) == 4 and len(one) <= 2:
            found = _order(texts, sep, order)
            if found is None:
                return None
            date_part = found
        else:
            return None
        end = head.end()
    rest = first[end:]
    if not rest:
        return "date", date_part
    clock = _CLOCK.fullmatch(rest)
    if clock is None:
        return None
    t, seconds, fraction, p_space, p, z_space, zone = clock.groups()
    time_part = t + ("%I" if p else "%H") + ":%M"
    time_part += (":%S" if seconds else "") + (".%f" if fraction else "")
    time_part += (p_space + "%p") if p else ""
    if zone:
        time_part += z_space + ("%Z" if zone in ("UTC", "GMT") else "%z")
    return "datetime", date_part + time_part


def _named(first: str) -> tuple[str, int] | None:
    """The pattern of a date written with its month's name, and where the date ends."""
    for expression, pattern in _NAMED:
        found = expression.match(first)
        if found is not None and found.group(1).lower() in MONTHS:
            return pattern, found.end()
    return None


def _month(fields: dict[str, str | None]) -> int:
    """A match's month, written as a number or a name."""
    name = fields.get("b")
    if name is None:
        return int(fields["m"] or 0)
    month = MONTHS.get(name.lower())
    if month is None:
        raise NotInPattern(f"{name!r} is not a month")
    return month


def _order(texts: list[str], sep: str, order: str) -> str | None:
    """The day/month order of ``NN?NN?YYYY`` values: decided by them, or the default."""
    parts = re.findall(
        rf"(?m)^([0-9]{{1,2}}){re.escape(sep)}([0-9]{{1,2}}){re.escape(sep)}", "\n".join(texts)
    )
    if not parts:
        return None
    firsts, seconds = zip(*parts)
    day_first = max(map(int, firsts)) > 12
    month_first = max(map(int, seconds)) > 12
    if day_first and month_first:
        return None
    dmy, mdy = f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"
    if day_first:
        return dmy
    if month_first:
        return mdy
    default = dmy if sep == "." or order == "dmy" else mdy
    return UNDECIDED + default


@dataclass(frozen=True)
class _Pattern:
    one: Callable[[str], re.Match[str] | None]  # one value, with named groups
    batch: Callable[[str], re.Match[str] | None]  # the batch's values joined by "\n"


@lru_cache(maxsize=64)
def _pattern(notation: str) -> _Pattern:
    """The expressions of a pattern; a datetime pattern also takes a date alone (its
    midnight), as an ISO datetime column does."""
    fmt = format_of(notation)
    date_part, time_part = fmt[:DATE_LENGTH], fmt[DATE_LENGTH:]
    one = _expression(date_part)
    if time_part:
        one += f"(?:{_expression(time_part)})?"
    bare = re.sub(r"\(\?P<[A-Za-z]>", "(?:", one)
    return _Pattern(re.compile(one).fullmatch, re.compile(rf"(?:{bare}\n)*{bare}").fullmatch)


def _expression(fmt: str) -> str:
    """A regular expression of strftime-style ``fmt``; other characters stand for themselves
    (a "T" or " " between date and time takes either)."""
    out = []
    for token in _TOKEN.findall(fmt):
        if token in _FIELDS:
            out.append(_FIELDS[token])
        elif token in (" ", "T") and not out:
            out.append("[ T]")
        else:
            out.append(re.escape(token))
    return "".join(out)


def read_dates(notation: str, texts: list[str]) -> list[str]:
    """ISO dates of a batch written in ``notation``; raises NotInPattern."""
    found = _pattern(notation)
    if texts and not found.batch("\n".join(texts)):
        raise NotInPattern("not a date in the column's pattern")
    iso = {}
    for text in set(texts):
        match = found.one(text)
        assert match is not None  # the batch matched
        fields = match.groupdict()
        try:
            iso[text] = date(int(match["Y"]), _month(fields), int(match["d"])).isoformat()
        except ValueError:
            raise NotInPattern(f"{text!r} is not a calendar date") from None
    return list(map(iso.__getitem__, texts))


def read_datetimes(notation: str, texts: list[str]) -> list[datetime]:
    """The moments of a batch written in ``notation`` (aware when written with an offset);
    raises NotInPattern."""
    found = _pattern(notation)
    if texts and not found.batch("\n".join(texts)):
        raise NotInPattern("not a datetime in the column's pattern")
    moments = {}
    for text in set(texts):
        match = found.one(text)
        assert match is not None  # the batch matched
        moments[text] = _moment(match, text)
    return list(map(moments.__getitem__, texts))


def _moment(match: re.Match[str], text: str) -> datetime:
    fields = match.groupdict()
    hour = int(fields.get("H") or fields.get("I") or 0)
    if fields.get("p"):
        if not 1 <= hour <= 12:
            raise NotInPattern(f"{text!r}: hour {hour} with AM/PM")
        hour = hour % 12 + (12 if fields["p"].lower() == "pm" else 0)
    micro = int((fields.get("f") or "0").ljust(6, "0"))
    try:
        moment = datetime(
            int(fields["Y"]),
            _month(fields),
            int(fields["d"]),
            hour,
            int(fields.get("M") or 0),
            int(fields.get("S") or 0),
            micro,
        )
    except ValueError:
        raise NotInPattern(f"{text!r} is not a calendar date and time") from None
    zone = fields.get("z")
    if zone is None:
        return moment
    return moment.replace(tzinfo=_zone(zone))


def _zone(text: str) -> timezone:
    if text in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise NotInPattern(f"offset {text!r} is out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
