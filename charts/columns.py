"""Columns as charts and insights see them: each with its semantic role.

The roles and how they are decided are ``streaming.roles``' (the sync decides them and keeps
them in METADATA); here a column is its name, position, type, statistics and role, read from
the dataset with the sync's sample by ``columns_and_sample``: what recommendations and
insights start from, reading no rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from charts import data, encoding
from streaming import filter as filters
from streaming.options import ROLES
from streaming.read import Dataset
from streaming.roles import CATEGORY_MAX, date_part_name, role_of, roles_of

__all__ = ["CATEGORY_MAX", "ROLES", "Column", "classified", "classify", "columns_and_sample"]

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
    roles = roles_of(columns, stats, sample, given)
    return [
        Column(c["name"], i, c["type"], stats.get(c["name"]) or {}, roles[c["name"]])
        for i, c in enumerate(columns)
    ]


def classify(
    name: str,
    position: int,
    kind: str,
    stats: dict[str, Any],
    values: Sequence[Any] = (),
    forced: str | None = None,
) -> Column:
    """A column with the role ``streaming.roles.role_of`` gives it."""
    return Column(name, position, kind, stats, role_of(name, kind, stats, values, forced))
