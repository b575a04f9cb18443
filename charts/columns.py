"""Columns as charts and insights see them: each with a semantic role, from its statistics, its
name and a sample of its values together.

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

The sync decides every column's role once (``decided_roles``) and keeps them in the dataset's
METADATA (``roles``: ``{NAME: ROLE}``), where clients and the web page read them. An upload's
``roles=flight:identifier,dep_time:clock`` corrects them: a given role wins over what the data
suggests, where the column's type allows it (``streaming.options.ROLES_OF_TYPE``; the sync
fails a job whose roles do not fit, ``role_mismatch``).

``columns_and_sample`` reads what recommendations and insights start from: every column with
its statistics and role (``stats.json``), and the sync's uniform sample of rows; no rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from charts import data, encoding
from streaming import filter as filters
from streaming.convert import SAMPLE_FILE, STATS_FILE
from streaming.options import ROLES, ROLES_OF_TYPE
from streaming.read import Dataset

__all__ = ["ROLES", "Column", "classified", "classify", "columns_and_sample", "decided_roles"]

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
DIMENSIONS = frozenset(["category", "time", "date_part"])  # what charts group by


@dataclass(frozen=True)
class Column(encoding.Column):
    """A chart's column (name, position, type, statistics) and the role it plays."""

    role: str  # measure, category, time, date_part, clock, or why it is left out

    @property
    def count(self) -> int:
        return int(self.stats.get("count") or 0)

    @property
    def completeness(self) -> float:
        total = self.count + int(self.stats.get("nulls") or 0)
        return 0.5 + 0.5 * (self.count / total if total else 0.0)

    @property
    def part(self) -> str | None:
        """Which part of a date a ``date_part`` column holds (``month``), else None."""
        return date_part_name(self.name) if self.role == "date_part" else None


def columns_and_sample(dataset: Dataset) -> tuple[list[Column], list[list[Any]]]:
    """Every column with its statistics and role (as the sync decided it and METADATA says,
    or decided now for a dataset synced before roles were), and the sync's row sample."""
    stats: dict[str, Any] = orjson.loads(dataset.stats_bytes())
    sample, _ = data.sample(dataset, filters.parse({}, dataset.meta["columns"]))
    return classified(dataset.meta["columns"], stats, sample, dataset.meta.get("roles")), sample


def classified(
    columns: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Any],
    sample: list[list[Any]],
    given: Mapping[str, str] | None,
) -> list[Column]:
    """The columns (METADATA's ``columns``) with their roles, ``given`` ones first."""
    given = given or {}
    return [
        classify(
            c["name"],
            i,
            c["type"],
            stats.get(c["name"]) or {},
            [row[i] for row in sample if row[i] is not None],
            given.get(c["name"]),
        )
        for i, c in enumerate(columns)
    ]


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
    sample = [orjson.loads(line) for line in lines]
    return {c.name: c.role for c in classified(columns, stats, sample, given)}


def classify(
    name: str,
    position: int,
    kind: str,
    stats: dict[str, Any],
    values: Sequence[Any] = (),
    forced: str | None = None,
) -> Column:
    """A column's role from its statistics, its name and a sample of its non-null ``values``;
    ``forced`` (a correction) wins where the column's type allows it."""
    count = int(stats.get("count") or 0)

    def make(role: str) -> Column:
        return Column(name, position, kind, stats, role)

    if kind == "null" or count == 0:
        return make("empty")
    if int(stats.get("distinct") or 0) <= 1:
        return make("constant")
    if forced is not None and forced in ROLES_OF_TYPE.get(kind, ()):
        return make(forced)
    return make(_role(name, kind, stats, values))


def _role(name: str, kind: str, stats: dict[str, Any], values: Sequence[Any]) -> str:
    count, distinct = int(stats.get("count") or 0), int(stats.get("distinct") or 0)
    words = _words(name)
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
    stats: dict[str, Any],
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
    words = _words(name)
    last = words[-1] if words else ""
    if last in DATE_PARTS:
        return last
    return {"yr": "year", "mon": "month", "hr": "hour", "wday": "weekday"}.get(last)


def _codes(stats: dict[str, Any], values: Sequence[Any]) -> bool:
    """Whether text values are short codes (``N14228``, ``JFK``): no spaces, short."""
    longest = stats.get("max_length")
    if longest is None or longest > CODE_LENGTH:
        return False
    return not any(" " in v for v in values if isinstance(v, str))


def _words(name: str) -> list[str]:
    """A column name's words, lower case: ``schedDepTime`` and ``sched_dep_time`` alike."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
