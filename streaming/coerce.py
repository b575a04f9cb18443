"""Column types: read CSV text as typed values, a whole column batch at a time.

A column has one type for all its values, chosen from its first batch (the sample) and widened
when a later batch contradicts it (``join``). Types, narrowest first:

==========  ===============================================  =================================
type        accepted text                                    JSON value
==========  ===============================================  =================================
null        only null markers so far                         null
boolean     true/false, True/False, TRUE/FALSE               true / false
integer     -?[0-9]+ without leading zeros, within 64 bits   integer
number      decimal or exponent notation, finite             number (float)
date        YYYY-MM-DD, a real calendar date                 "YYYY-MM-DD"
datetime    ISO 8601 date and time, all naive or all with    "YYYY-MM-DDTHH:MM:SS[.ffffff]"
            an offset (then converted to UTC)                 (with "Z" when it had an offset)
string      anything else                                    string
==========  ===============================================  =================================

Null markers, in any column: the empty string, ``NA``, ``N/A``, ``null``, ``NULL``, ``NaN``.
Leading zeros ("01234") keep a column a string: they are codes, not numbers. An integer outside
the signed 64-bit range makes its column a string, so it is never rounded; so does, in a number
column, an integer that a float cannot hold exactly (beyond 2**53).

Exports write numbers and dates otherwise (``$1,234.50``, ``45%``, ``31/12/2024``): a column
of those is read in one *notation*, and its kind says which, as ``TYPE:NOTATION``
(``number:$``, ``integer:#``, ``date:%d/%m/%Y``; see ``streaming.numbers`` and
``streaming.dates``). ``base`` gives the type; ``describe`` what the column's metadata shows
(``unit`` or ``format``). Plain kinds (``date``, ``number``) are the fast paths above, tried
first, so ISO and plain columns cost what they did.

Each converter takes a batch of one column's raw strings and returns the typed values (with
None for nulls) and the non-null typed values, or raises ``Mismatch``. The work runs in C
builtins over the whole batch (``map``, ``str.translate``, one regex over the joined text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from itertools import repeat
from operator import add, methodcaller
from typing import Any

import orjson

from streaming import dates, numbers

NULL_MARKERS = frozenset(["", "NA", "N/A", "null", "NULL", "NaN"])
TYPES = ("null", "boolean", "integer", "number", "date", "datetime", "string")
NUMERIC = frozenset(["integer", "number"])
ORDERED = frozenset(["integer", "number", "date", "datetime"])

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BOOLEANS = {"true": True, "false": False, "True": True, "False": False}
_BOOLEANS.update({"TRUE": True, "FALSE": False})
_NOT_INTEGER_CHARS = str.maketrans("", "", "0123456789-")
_NOT_NUMBER_CHARS = str.maketrans("", "", "0123456789-+.eE")
# A zero that starts a value and is followed by a digit: "012", "-07.5" (not "10.05", "1e05"),
# searched for in "\n" + the batch's values joined by "\n" (a literal prefix searches fast).
_LEADING_ZERO = re.compile(r"\n[-+]?0[0-9]")
_LONG_INTEGER = re.compile(r"-?[0-9]{16,}")
_DATES = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}\n)*[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# What a datetime column takes, searched for in the batch's values joined by "\n": the form
# above, or a date alone (its midnight), since join(date, datetime) is datetime. fromisoformat
# takes more ("2023-W01-1", "20230101", seven fractional digits it truncates).
_DATETIME_VALUE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_DATETIME_VALUES = re.compile(rf"(?:{_DATETIME_VALUE}\n)*{_DATETIME_VALUE}")


class Mismatch(ValueError):
    """A value in the batch does not fit the column's type."""


Typed = tuple[list[Any], list[Any]]  # (values with None for nulls, the non-null values)


def split_nulls(raw: Sequence[str]) -> tuple[list[str], bool]:
    """The non-null strings of a batch, and whether any null was dropped."""
    if NULL_MARKERS.isdisjoint(raw):
        return list(raw), False
    return [v for v in raw if v not in NULL_MARKERS], True


def _with_nulls(raw: Sequence[str], values: list[Any]) -> list[Any]:
    """Put None back where the raw batch had null markers."""
    it = iter(values)
    return [None if v in NULL_MARKERS else next(it) for v in raw]


def _separators(texts: list[str]) -> str:
    r"""What may remain of "\n" + "\n".join(texts) once the allowed characters are removed.

    Anything more is a value's own line break, which int() and float() strip unseen ("1\n").
    """
    return "\n" * max(1, len(texts))


def _integers(texts: list[str]) -> list[int]:
    joined = "\n" + "\n".join(texts)
    if joined.translate(_NOT_INTEGER_CHARS) != _separators(texts) or _LEADING_ZERO.search(joined):
        raise Mismatch("not an integer")
    try:
        # The texts are digits and signs only: as a JSON array, orjson reads them in 1/3 of
        # int()'s time, the same integers, and rejects what int() rejects ("1-2", "-").
        values: list[int] = orjson.loads("[" + ",".join(texts) + "]")
    except orjson.JSONDecodeError:
        raise Mismatch("not an integer") from None
    if values and (min(values) <= _INT64_MIN or max(values) > _INT64_MAX):
        # Past 64 bits orjson gives a float (-2**63 - 1 as -2.0**63): decide exactly.
        values = list(map(int, texts))
        if min(values) < _INT64_MIN or max(values) > _INT64_MAX:
            raise Mismatch("integer beyond 64 bits")
    return values


def _numbers(texts: list[str]) -> list[float]:
    joined = "\n" + "\n".join(texts)
    if joined.translate(_NOT_NUMBER_CHARS) != _separators(texts) or _LEADING_ZERO.search(joined):
        raise Mismatch("not a number")
    try:
        values = list(map(float, texts))
    except ValueError:
        raise Mismatch("not a number") from None
    if not all(map(math.isfinite, values)):
        raise Mismatch("number out of range")
    if values and max(map(abs, values)) >= 2.0**53:
        # An integer a float cannot hold exactly ("12345678901234567") would be rounded:
        # the column is a string instead.
        for text in filter(_LONG_INTEGER.fullmatch, texts):
            exact = int(text)
            if not _INT64_MIN <= exact <= _INT64_MAX or int(float(text)) != exact:
                raise Mismatch("integer that a float would round")
    return values


def _booleans(texts: list[str]) -> list[bool]:
    try:
        return list(map(_BOOLEANS.__getitem__, texts))
    except KeyError:
        raise Mismatch("not a boolean") from None


def _dates(texts: list[str]) -> list[str]:
    if texts and not _DATES.fullmatch("\n".join(texts)):
        raise Mismatch("not a date")
    try:
        list(map(date.fromisoformat, set(texts)))  # rejects 2023-02-30
    except ValueError:
        raise Mismatch("not a calendar date") from None
    return texts


def _datetimes(texts: list[str]) -> list[str]:
    if texts and not _DATETIME_VALUES.fullmatch("\n".join(texts)):
        raise Mismatch("not a datetime")
    distinct = set(texts)
    if 2 * len(distinct) <= len(texts):  # repeated moments (hourly data): each read once
        keys = list(distinct)
        return list(map(dict(zip(keys, _datetimes_read(keys))).__getitem__, texts))
    return _datetimes_read(texts)


def _datetimes_read(texts: list[str]) -> list[str]:
    try:
        parsed = list(map(datetime.fromisoformat, texts))
    except ValueError:
        raise Mismatch("not a datetime") from None
    return _iso_moments(parsed)


_NAIVE = methodcaller("replace", tzinfo=None)


def _iso_moments(parsed: list[datetime]) -> list[str]:
    """ISO text of a batch's moments: all naive, or all aware and then in UTC with "Z"."""
    aware = {d.tzinfo is not None for d in parsed}
    if len(aware) > 1:
        raise Mismatch("datetimes with and without an offset")
    if aware == {True}:
        # In UTC, naive, as text, "Z" added: map() chains, no Python call per value.
        try:
            utc = list(map(_NAIVE, map(datetime.astimezone, parsed, repeat(UTC))))
        except OverflowError:  # "0001-01-01T00:00:00+01:00" is in year 0 in UTC
            raise Mismatch("datetime out of range in UTC") from None
        return list(map(add, map(datetime.isoformat, utc), repeat("Z")))
    return list(map(datetime.isoformat, parsed))


def _strings(texts: list[str]) -> list[str]:
    return texts


def _nothing(texts: list[str]) -> list[None]:
    if texts:
        raise Mismatch("not null")
    return []


_CONVERTERS: dict[str, Callable[[list[str]], list[Any]]] = {
    "null": _nothing,
    "boolean": _booleans,
    "integer": _integers,
    "number": _numbers,
    "date": _dates,
    "datetime": _datetimes,
    "string": _strings,
}


def _written(kind: str, texts: list[str], decimal: str) -> list[Any]:
    """Convert a batch written in the notation of ``kind`` (``TYPE:NOTATION``)."""
    kind_type, _, notation = kind.partition(":")
    if kind_type in NUMERIC:
        plain = numbers.plain_texts(texts, notation, decimal)
        if plain is None:
            raise Mismatch(f"not a number written as {notation}")
        return _CONVERTERS[kind_type](plain)
    try:
        if kind_type == "date":
            return dates.read_dates(notation, texts)
        if kind_type == "datetime":
            return _iso_moments(dates.read_datetimes(notation, texts))
    except dates.NotInPattern as exc:
        raise Mismatch(str(exc)) from None
    raise ValueError(f"no notation for {kind_type}")


def convert(kind: str, raw: Sequence[str], decimal: str = ".") -> Typed:
    """Type one column's batch of raw strings as ``kind``; raises Mismatch.

    ``decimal`` is "." or "," (numbers written ``1.234,56``).
    """
    texts, had_nulls = split_nulls(raw)
    if kind == "number" and decimal == ",":
        kind = "number:" + numbers.NO_UNIT
    values = _written(kind, texts, decimal) if ":" in kind else _CONVERTERS[kind](texts)
    return (_with_nulls(raw, values) if had_nulls else values), values


def infer(raw: Sequence[str], decimal: str = ".", order: str = "mdy") -> str:
    """The narrowest type (kind, with its notation) that every value in the batch fits.

    ``order`` (``mdy`` or ``dmy``) reads ``NN/NN/YYYY`` dates whose values do not decide.
    """
    texts, _ = split_nulls(raw)
    if not texts:
        return "null"
    for kind in ("boolean", "integer", "number", "date"):
        if kind == "number" and decimal == ",":
            continue  # "1.5" is not one and a half there
        try:
            _CONVERTERS[kind](texts)
            return kind
        except Mismatch:
            pass
    # Dates among datetimes make a datetime column (a date alone is its midnight), the same
    # type join() gives when the two arrive in different batches.
    if any(map(_DATETIME.fullmatch, texts)):
        try:
            _datetimes(texts)
            return "datetime"
        except Mismatch:
            pass
    return _written_kind(texts, decimal, order) or "string"


def _written_kind(texts: list[str], decimal: str, order: str) -> str | None:
    """The kind of a batch of numbers or dates written as exports write them, if it is one."""
    notation = numbers.notation_of(texts, decimal)
    if notation is not None:
        plain = numbers.plain_texts(texts, notation, decimal)
        for kind_type in ("integer", "number") if plain is not None else ():
            try:
                _CONVERTERS[kind_type](plain or [])
                return f"{kind_type}:{notation}"
            except Mismatch:
                pass
    for guessed in dates.guesses(texts, order):
        kind = ":".join(guessed)
        try:
            _written(kind, texts, decimal)
            return kind
        except Mismatch:
            pass
    return None


def base(kind: str) -> str:
    """The type of a kind: ``number`` for ``number:$``."""
    return kind.partition(":")[0]


def describe(kind: str) -> dict[str, str]:
    """What a column's metadata says of its notation: ``{"unit": "$"}``, ``{"format": ...}``."""
    kind_type, _, notation = kind.partition(":")
    if not notation or notation == numbers.NO_UNIT:
        return {}
    if kind_type in NUMERIC:
        return {"unit": notation}
    return {"format": dates.format_of(notation)}


def fit(wanted: str, kind: str) -> str | None:
    """The kind of type ``wanted`` that reads what ``kind`` reads, or None (a forced type)."""
    kind_type, colon, notation = kind.partition(":")
    if wanted == "string":
        return "string"
    if kind_type == "null":
        return wanted
    if kind_type == wanted:
        return kind
    if (kind_type, wanted) in (("integer", "number"), ("date", "datetime")):
        return wanted + colon + notation
    return None


def join(old: str, new: str) -> str:
    """The narrowest kind that holds values of both kinds."""
    if old == new or new == "null":
        return old
    if old == "null":
        return new
    if ":" in old or ":" in new:
        return _join_written(old, new)
    pair = {old, new}
    if pair <= NUMERIC:
        return "number"
    if pair <= {"date", "datetime"}:
        return "datetime"
    return "string"


def _join_written(old: str, new: str) -> str:
    """join() when a notation is involved: one symbol per column, one date pattern."""
    (old_type, _, old_note), (new_type, _, new_note) = old.partition(":"), new.partition(":")
    if {old_type, new_type} <= NUMERIC:
        # Plain numbers are also written in the notation without a symbol.
        notes = {old_note or numbers.NO_UNIT, new_note or numbers.NO_UNIT}
        kind_type = old_type if old_type == new_type else "number"
        return f"{kind_type}:{notes.pop()}" if len(notes) == 1 else "string"
    if {old_type, new_type} <= {"date", "datetime"}:
        return _join_dates(old_type, old_note, new_type, new_note)
    return "string"


def _join_dates(old_type: str, old_note: str, new_type: str, new_note: str) -> str:
    """The pattern that reads both: the same date part (an undecided day/month order may
    turn), and the same time part if both have one."""
    if not old_note:  # ISO: a date is "%Y-%m-%d"; an ISO datetime has no pattern to share
        old_note = "%Y-%m-%d" if old_type == "date" else ""
    if not new_note:
        new_note = "%Y-%m-%d" if new_type == "date" else ""
    if not (old_note and new_note):
        return "string"
    old_undecided, new_undecided = (n.startswith(dates.UNDECIDED) for n in (old_note, new_note))
    old_fmt, new_fmt = dates.format_of(old_note), dates.format_of(new_note)
    old_day, new_day = old_fmt[: dates.DATE_LENGTH], new_fmt[: dates.DATE_LENGTH]
    if old_day == new_day:
        day, undecided = old_day, old_undecided and new_undecided
    elif old_undecided and dates.swapped(old_day) == new_day:
        day, undecided = new_day, new_undecided
    elif new_undecided and dates.swapped(new_day) == old_day:
        day, undecided = old_day, old_undecided
    else:
        return "string"
    old_clock, new_clock = old_fmt[dates.DATE_LENGTH :], new_fmt[dates.DATE_LENGTH :]
    if old_clock and new_clock and old_clock != new_clock:
        return "string"
    kind_type = "datetime" if "datetime" in (old_type, new_type) else "date"
    return f"{kind_type}:{dates.UNDECIDED if undecided else ''}{day}{old_clock or new_clock}"
