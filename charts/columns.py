"""Columns as charts and insights see them: each with a role read from its statistics.

A column's role (after CompassQL's data-type and cardinality rules):

- left out: ``empty`` (all null); ``constant`` (one value); ``identifier`` (an integer or text
  column whose values are nearly all distinct, or named like ``id``/``*_id`` with mostly
  distinct values); ``text`` (text with more than 50 distinct values: too many for a bar);
- ``measure``: a numeric column with more than 12 values; ``category``: text or boolean with
  2–50 values, or an integer with at most 12; ``time``: a date or datetime with at least 3
  values.

``columns_and_sample`` reads what recommendations and insights start from: every column with
its statistics and role (``stats.json``), and the sync's uniform sample of rows; no rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from charts import data, encoding
from streaming import filter as filters
from streaming.read import Dataset

CATEGORY_MAX = 50
SMALL_INTEGERS = 12  # an integer column with at most this many values is a category
IDENTIFIER_SHARE = 0.95
ID_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key)$|[a-z]Id$", re.IGNORECASE)


@dataclass(frozen=True)
class Column(encoding.Column):
    """A chart's column (name, position, type, statistics) and the role its statistics give it."""

    role: str  # measure, category, time, or why it is left out

    @property
    def count(self) -> int:
        return int(self.stats.get("count") or 0)

    @property
    def completeness(self) -> float:
        total = self.count + int(self.stats.get("nulls") or 0)
        return 0.5 + 0.5 * (self.count / total if total else 0.0)


def columns_and_sample(dataset: Dataset) -> tuple[list[Column], list[list[Any]]]:
    """Every column with its statistics and role, and the sync's row sample."""
    stats: dict[str, Any] = orjson.loads(dataset.stats_bytes())
    columns = [
        classify(c["name"], i, c["type"], stats.get(c["name"]) or {})
        for i, c in enumerate(dataset.meta["columns"])
    ]
    sample, _ = data.sample(dataset, filters.parse({}, dataset.meta["columns"]))
    return columns, sample


def classify(name: str, position: int, kind: str, stats: dict[str, Any]) -> Column:
    """A column's role from its statistics."""
    count, distinct = int(stats.get("count") or 0), int(stats.get("distinct") or 0)

    def make(role: str) -> Column:
        return Column(name, position, kind, stats, role)

    if kind == "null" or count == 0:
        return make("empty")
    if distinct <= 1:
        return make("constant")
    named = ID_NAME.search(name) is not None
    if (
        kind in ("integer", "string")
        and count >= 20
        and (distinct >= IDENTIFIER_SHARE * count or (named and distinct >= 0.5 * count))
    ):
        return make("identifier")
    if kind in ("date", "datetime"):
        return make("time" if distinct >= 3 else "category")
    if kind == "boolean":
        return make("category")
    if kind == "integer" and distinct <= SMALL_INTEGERS:
        return make("category")
    if kind in ("integer", "number"):
        return make("measure")
    return make("category" if distinct <= CATEGORY_MAX else "text")
