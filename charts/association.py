"""Measures of association between two columns, over a sample of rows (lists of values).

Each needs at least ten rows where both values are present and answers None otherwise, when a
column does not vary, or when its values are too large to square (near the float limit).
Used to score recommended charts and to find facts for insights.
"""

from __future__ import annotations

import math
from typing import Any


def _pairs(rows: list[list[Any]], a: int, b: int) -> list[tuple[Any, Any]]:
    return [(r[a], r[b]) for r in rows if r[a] is not None and r[b] is not None]


def pearson(rows: list[list[Any]], a: int, b: int) -> float | None:
    """Pearson's r of two numeric columns."""
    return _finite(_pearson, rows, a, b)


def eta(rows: list[list[Any]], category: int, measure: int) -> float | None:
    """The correlation ratio: how much of a measure's spread its category explains."""
    return _finite(_eta, rows, category, measure)


def pairs_present(rows: list[list[Any]], a: int, b: int) -> int:
    """How many rows have both values: what a measure of association was measured on."""
    return sum(1 for r in rows if r[a] is not None and r[b] is not None)


def _finite(measure: Any, rows: list[list[Any]], a: int, b: int) -> float | None:
    try:
        found: float | None = measure(rows, a, b)
    except (OverflowError, ValueError, ZeroDivisionError):  # sums past the float limit
        return None
    return found if found is not None and math.isfinite(found) else None


def _pearson(rows: list[list[Any]], a: int, b: int) -> float | None:
    pairs = _pairs(rows, a, b)
    if len(pairs) < 10:
        return None
    xs, ys = zip(*pairs)
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in pairs)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def cramers_v(rows: list[list[Any]], a: int, b: int) -> float | None:
    pairs = _pairs(rows, a, b)
    if len(pairs) < 10:
        return None
    table: dict[tuple[Any, Any], int] = {}
    left: dict[Any, int] = {}
    right: dict[Any, int] = {}
    for x, y in pairs:
        table[x, y] = table.get((x, y), 0) + 1
        left[x] = left.get(x, 0) + 1
        right[y] = right.get(y, 0) + 1
    k = min(len(left), len(right))
    if k < 2:
        return None
    n = len(pairs)
    chi2 = 0.0
    for x, nx in left.items():
        for y, ny in right.items():
            expected = nx * ny / n
            chi2 += (table.get((x, y), 0) - expected) ** 2 / expected
    return min(1.0, math.sqrt(chi2 / (n * (k - 1))))


def _eta(rows: list[list[Any]], category: int, measure: int) -> float | None:
    pairs = _pairs(rows, category, measure)
    if len(pairs) < 10:
        return None
    groups: dict[Any, list[float]] = {}
    for c, v in pairs:
        groups.setdefault(c, []).append(v)
    if len(groups) < 2:
        return None
    values = [v for _, v in pairs]
    mean = math.fsum(values) / len(values)
    total = math.fsum((v - mean) ** 2 for v in values)
    if total <= 0:
        return None
    between = math.fsum(len(g) * (math.fsum(g) / len(g) - mean) ** 2 for g in groups.values())
    return math.sqrt(between / total)
