"""What a column is, decided from its statistics, its name and a sample of its values together:
its role, which charts and insights go by (``charts.columns``). The sync decides each
column's once (``decided_roles``) and keeps them in METADATA (``roles``).

A column's role:

- ``measure``: a quantity to add up, average or bin (amounts, delays, prices, temperatures);
- ``category``: a dimension to group by: text or boolean with 2–50 values, an integer with at
  most 12 values, short codes (no spaces, 16 characters at most) with at most 500 values, or a
  direction (``wind_dir``, ``bearing``) with at most 50;
- ``time``: a date or datetime with at least 3 values;
- ``date_part``: an integer named for a part of a date whose values fit it (``year`` within
  1000–2999, ``month`` 1–12, ``day`` 1–31, ``hour`` 0–23, ``minute`` 0–59, ``weekday``,
  ``quarter``, ``week``): ordinal, a time axis, never averaged;
- ``clock``: a time of day written as an HHMM integer (``517`` is 05:17): values within
  0–2400, spanning 3 hours or more, whose last two digits are all under 60 in a sample of at
  least 30 values with more than 24 distinct (numbers spread at random pass that test with
  odds of 0.6^30), never averaged;
- ``identifier``: a key or a code, never a measure: an integer or text column whose values are
  nearly all distinct (95%) and, for integers, dense (a row number: its range at most twice
  its count) or named like a key (``id``, ``*_id``, ``key``); a column named like a key with
  half its values distinct; an integer whose name ends in a code's word (``flight``, ``zip``,
  ``code``, ``number``, ``phone``...) with more than 12 values; short codes with more than
  500 values (``tailnum``);
- left out: ``empty`` (all null), ``constant`` (one value), ``text`` (free text: more than 50
  values, longer than codes or with spaces).

An upload's ``roles=flight:identifier,dep_time:clock`` corrects them: a given role wins over
what the data suggests, where the column's type allows it (``streaming.options.ROLES_OF_TYPE``;
the sync fails a job whose roles do not fit, ``role_mismatch``).

This module imports nothing of the charts, so the sync's process stays as small as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from streaming.convert import SAMPLE_FILE, STATS_FILE
from streaming.options import ROLES_OF_TYPE

CATEGORY_MAX = 50
CODE_CATEGORY_MAX = 500  # short codes with at most this many values are a category
CODE_LENGTH = 16
SMALL_INTEGERS = 12  # an integer column with at most this many values is a category
IDENTIFIER_SHARE = 0.95
CLOCK_SAMPLE = 30  # values a clock time needs in the sample before its digits say so
ID_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key)$|[a-z]Id$", re.IGNORECASE)
CODE_WORDS = frozenset(
    [
        "flight",
        "zip",
        "zipcode",
        "postcode",
        "postal",
        "code",
        "number",
        "no",
        "num",
        "nr",
        "phone",
        "account",
        "fips",
        "sku",
        "isbn",
        "ean",
        "upc",
        "serial",
        "tailnum",
        "badge",
        "ticket",
        "invoice",
    ]
)
DIRECTION_WORDS = frozenset(["dir", "direction", "bearing", "heading", "azimuth"])
DATE_PARTS: dict[str, tuple[int, int]] = {  # a date part's name and the range of its values
    "year": (1000, 2999),
    "quarter": (1, 4),
    "month": (1, 12),
    "week": (0, 53),
    "day": (1, 31),
    "weekday": (0, 7),
    "dow": (0, 7),
    "hour": (0, 23),
    "minute": (0, 59),
}


def decided_roles(
    folder: Path, columns: Sequence[Mapping[str, Any]], given: Mapping[str, str] | None
) -> dict[str, str]:
    """Every column's role, by name, from a synced folder's statistics and sample: what the
    sync keeps in METADATA (``roles``), the upload's corrections (``given``) winning."""
    stats = orjson.loads((folder / STATS_FILE).read_bytes())
    try:
        lines = (folder / SAMPLE_FILE).read_bytes().splitlines()
    except FileNotFoundError:
        lines = []
    return roles_of(columns, stats, [orjson.loads(line) for line in lines], given)


def roles_of(
    columns: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Any],
    sample: Sequence[Sequence[Any]],
    given: Mapping[str, str] | None,
) -> dict[str, str]:
    """Every column's role, by name, from its statistics and the sample's rows (lists in
    the columns' order), ``given`` winning where a column's type allows it."""
    given = given or {}
    return {
        c["name"]: role_of(
            c["name"],
            c["type"],
            stats.get(c["name"]) or {},
            [row[i] for row in sample if row[i] is not None],
            given.get(c["name"]),
        )
        for i, c in enumerate(columns)
    }


def role_of(
    name: str,
    kind: str,
    stats: Mapping[str, Any],
    values: Sequence[Any] = (),
    given: str | None = None,
) -> str:
    """A column's role from its statistics, its name and a sample of its non-null ``values``;
    ``given`` (a correction) wins where the column's type allows it."""
    count = int(stats.get("count") or 0)
    if kind == "null" or count == 0:
        return "empty"
    if int(stats.get("distinct") or 0) <= 1:
        return "constant"
    if given is not None and given in ROLES_OF_TYPE.get(kind, ()):
        return given
    return _role(name, kind, stats, values)


def _role(name: str, kind: str, stats: Mapping[str, Any], values: Sequence[Any]) -> str:
    count, distinct = int(stats.get("count") or 0), int(stats.get("distinct") or 0)
    words = words_of(name)
    unique = count >= 20 and distinct >= IDENTIFIER_SHARE * count
    keyed = ID_NAME.search(name) is not None
    if kind in ("date", "datetime"):
        return "time" if distinct >= 3 else "category"
    if kind == "boolean":
        return "category"
    if kind == "integer":
        return _integer_role(name, words, stats, values, unique, keyed)
    if kind == "number":
        return "measure"
    if unique or (keyed and count >= 20 and distinct >= 0.5 * count):
        return "identifier"
    if distinct <= CATEGORY_MAX:
        return "category"
    if _codes(stats, values):
        return "category" if distinct <= CODE_CATEGORY_MAX else "identifier"
    return "text"


def _integer_role(
    name: str,
    words: list[str],
    stats: Mapping[str, Any],
    values: Sequence[Any],
    unique: bool,
    keyed: bool,
) -> str:
    count, distinct = int(stats.get("count") or 0), int(stats.get("distinct") or 0)
    low, high = stats.get("min"), stats.get("max")
    part = date_part_name(name)
    if part is not None and low is not None and high is not None:
        first, last = DATE_PARTS[part]
        if first <= low and high <= last:
            return "date_part"
    if keyed and count >= 20 and distinct >= 0.5 * count:
        return "identifier"
    dense = low is not None and high is not None and high - low + 1 <= 2 * count
    if unique and dense:
        return "identifier"
    if words and words[-1] in CODE_WORDS and distinct > SMALL_INTEGERS:
        return "identifier"
    if distinct <= SMALL_INTEGERS:
        return "category"
    if DIRECTION_WORDS.intersection(words):
        return "category" if distinct <= CATEGORY_MAX else "measure"
    if is_clock(low, high, distinct, values):
        return "clock"
    return "measure"


def is_clock(low: Any, high: Any, distinct: int, values: Sequence[Any]) -> bool:
    """Whether integers look like HHMM times of day: within 0–2400 and spanning three hours or
    more, more than 24 values, and every sampled value's last two digits under 60."""
    if low is None or high is None or low < 0 or high > 2400 or distinct <= 24:
        return False
    if high - low < 300:  # less than three hours: small counts, not times of day
        return False
    return len(values) >= CLOCK_SAMPLE and all(v % 100 < 60 for v in values)


def date_part_name(name: str) -> str | None:
    """The date part a column's name says it holds (``birth_year`` → ``year``), else None."""
    words = words_of(name)
    last = words[-1] if words else ""
    if last in DATE_PARTS:
        return last
    return {"yr": "year", "mon": "month", "hr": "hour", "wday": "weekday"}.get(last)


def _codes(stats: Mapping[str, Any], values: Sequence[Any]) -> bool:
    """Whether text values are short codes (``N14228``, ``JFK``): no spaces, short."""
    longest = stats.get("max_length")
    if longest is None or longest > CODE_LENGTH:
        return False
    return not any(" " in v for v in values if isinstance(v, str))


def words_of(name: str) -> list[str]:
    """A column name's words, lower case: ``schedDepTime`` and ``sched_dep_time`` alike."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
