"""What a table is about: its main measures, its main categories and its time axis.

Recommendations answer the obvious questions about these first (a measure by the main
category, over time, its distribution, the category's counts), and insights run their
group-bys on them, so both agree on what matters. All of it from the statistics, the names
and the sync's sample; no rows.

- measures, best first: complete, varying, named like a quantity people track (``delay``,
  ``price``, ``amount``...: ×1.25), and earlier in the table (each place costs 3%);
- categories, best first: 3–20 values (×1.0; to 30 ×0.85, 2 ×0.8, up to 50 ×0.7), not
  dominated by one value (×0.5 past 90%), labels rather than number codes (×0.9), and telling
  the main measure apart (×(0.75 + η/2), η the correlation ratio in the sample);
- the time axis: the most complete date or datetime column with the most values, else a
  ``year`` date part with at least 5 values, else another date part (``month``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from charts import association
from charts.columns import CATEGORY_MAX, Column
from streaming.roles import words_of

QUANTITY_WORDS = frozenset(
    [
        "delay",
        "delays",
        "price",
        "prices",
        "cost",
        "costs",
        "amount",
        "sales",
        "revenue",
        "profit",
        "total",
        "value",
        "score",
        "income",
        "spend",
        "spending",
        "duration",
        "temp",
        "temperature",
        "rate",
        "balance",
        "generation",
    ]
)


@dataclass(frozen=True)
class Focus:
    measures: list[Column]
    categories: list[Column]
    time: Column | None
    parts: list[Column]  # date parts other than the time axis (month, hour, weekday)
    leading: int = 0  # how many of the measures are not derived from another column

    @property
    def main_measures(self) -> list[Column]:
        """The measures not derived from another column, best first."""
        return self.measures[: self.leading]


def focus(
    columns: Sequence[Column],
    sample: list[list[Any]],
    derived: Collection[frozenset[str]] = (),
) -> Focus:
    """The table's main measures, categories and time axis, best first; a measure ``derived``
    from a category or from a measure ranked above it (air time from the airport) goes last,
    and is not among the ``leading`` ones."""
    ranked = rank_measures(columns)
    follows = [m for i, m in enumerate(ranked) if _derived(m, ranked[:i], columns, derived)]
    measures = [m for m in ranked if m not in follows] + follows
    categories = rank_categories(columns, measures[0] if measures else None, sample)
    time = time_axis(columns)
    parts = [c for c in columns if c.role == "date_part" and c is not time and c.part != "year"]
    return Focus(measures, categories, time, parts, len(measures) - len(follows))


def _derived(
    m: Column,
    above: Sequence[Column],
    columns: Sequence[Column],
    derived: Collection[frozenset[str]],
) -> bool:
    sources = [*above, *(c for c in columns if c.role == "category")]
    return any(frozenset((m.name, s.name)) in derived for s in sources)


def rank_measures(columns: Sequence[Column]) -> list[Column]:
    found = [c for c in columns if c.role == "measure"]

    def score(pair: tuple[int, Column]) -> float:
        i, c = pair
        varies = 1.0 if (c.stats.get("stddev") or 0) > 0 else 0.3
        named = 1.25 if QUANTITY_WORDS.intersection(words_of(c.name)) else 1.0
        return c.completeness * varies * named * (1 - 0.03 * min(i, 20))

    return [c for _, c in sorted(enumerate(found), key=lambda p: -score(p))]


def rank_categories(
    columns: Sequence[Column], measure: Column | None, sample: list[list[Any]]
) -> list[Column]:
    found = [c for c in columns if c.role == "category" and 2 <= c.distinct <= CATEGORY_MAX]

    def score(c: Column) -> float:
        d = c.distinct
        cardinality = 1.0 if 3 <= d <= 20 else 0.85 if d <= 30 and d > 2 else 0.8 if d == 2 else 0.7
        top = c.stats.get("top") or []
        dominated = 0.5 if top and c.count and top[0]["count"] / c.count > 0.9 else 1.0
        labels = 1.0 if c.kind == "string" else 0.9  # a number code is seldom the question
        eta = association.eta(sample, c.position, measure.position) if measure else None
        return c.completeness * cardinality * dominated * labels * (0.75 + (eta or 0.0) / 2)

    return sorted(found, key=lambda c: -score(c))


INTENSIVE_WORDS = frozenset(
    [
        "price",
        "prices",
        "rate",
        "ratio",
        "percent",
        "pct",
        "share",
        "temp",
        "temperature",
        "avg",
        "average",
        "mean",
        "median",
        "score",
        "index",
        "speed",
        "per",
        "percap",
        "capita",
        "exp",
        "expectancy",
        "age",
    ]
)


def additive(m: Column) -> bool:
    """Whether a measure's values add up to a meaningful total (amounts, counts, generation),
    as opposed to levels whose sum means nothing (a price, a temperature, a rate): never
    negative, and not named like a level (``gdpPercap`` and ``lifeExp`` included)."""
    named = INTENSIVE_WORDS.intersection(words_of(m.name))
    return (m.stats.get("min") or 0) >= 0 and not named


def panel(t: Column, c: Column, rows: int) -> bool:
    """Whether a table holds one series per category over time (about one row per time and
    category, as stock prices by symbol): then a line per category says what a mean hides."""
    cells = max(t.distinct, 1) * c.distinct
    return c.distinct <= 8 and cells / 2 <= rows <= 2 * cells


def time_axis(columns: Sequence[Column]) -> Column | None:
    times = [c for c in columns if c.role == "time"]
    if times:
        return max(times, key=lambda c: (c.completeness, c.distinct))
    parts = [c for c in columns if c.role == "date_part"]
    years = [c for c in parts if c.part == "year" and c.distinct >= 5]
    if years:
        return years[0]
    ordered = sorted(
        parts,
        key=lambda c: (
            ("year", "quarter", "month", "week").index(c.part)
            if c.part in ("year", "quarter", "month", "week")
            else 9
        ),
    )
    return ordered[0] if ordered and ordered[0].part in ("quarter", "month", "week") else None
