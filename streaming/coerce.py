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

Each converter takes a batch of one column's raw strings and returns the typed values (with
None for nulls) and the non-null typed values, or raises ``Mismatch``. The work runs in C
builtins over the whole batch (``map``, ``str.translate``, one regex over the joined text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

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
        values = list(map(int, texts))
    except ValueError:
        raise Mismatch("not an integer") from None
    if values and (min(values) < _INT64_MIN or max(values) > _INT64_MAX):
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
    try:
        parsed = list(map(datetime.fromisoformat, texts))
    except ValueError:
        raise Mismatch("not a datetime") from None
    aware = {d.tzinfo is not None for d in parsed}
    if len(aware) > 1:
        raise Mismatch("datetimes with and without an offset")
    if aware == {True}:
        try:
            return [_utc_text(d) for d in parsed]
        except OverflowError:  # "0001-01-01T00:00:00+01:00" is in year 0 in UTC
            raise Mismatch("datetime out of range in UTC") from None
    return list(map(datetime.isoformat, parsed))


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


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


def convert(kind: str, raw: Sequence[str]) -> Typed:
    """Type one column's batch of raw strings as ``kind``; raises Mismatch."""
    texts, had_nulls = split_nulls(raw)
    values = _CONVERTERS[kind](texts)
    return (_with_nulls(raw, values) if had_nulls else values), values


def infer(raw: Sequence[str]) -> str:
    """The narrowest type that every value in the batch fits."""
    texts, _ = split_nulls(raw)
    if not texts:
        return "null"
    for kind in ("boolean", "integer", "number", "date"):
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
    return "string"


def join(old: str, new: str) -> str:
    """The narrowest type that holds values of both types."""
    if old == new or new == "null":
        return old
    if old == "null":
        return new
    pair = {old, new}
    if pair <= NUMERIC:
        return "number"
    if pair <= {"date", "datetime"}:
        return "datetime"
    return "string"
