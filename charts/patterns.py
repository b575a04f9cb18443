"""Insights over all rows: what a measure does over time and across categories.

The questions analysts ask first (after Power BI's Quick Insights), each answered by a
group-by over every row (``streaming.query.RUNNER``: from the columns once they exist, else
one scan), and each with its test and threshold:

- ``trend``: the measure's mean per time bucket (at most 60 buckets, the finest unit that
  fits) rises or falls: Mann–Kendall's test on the series, |z| ≥ 2.58 (p < 0.01, two-sided:
  several series are tested) and Kendall's |τ| ≥ 0.3 over at least 6 buckets, with Sen's
  slope for its size over the span;
- ``seasonality``: means by month of the year, day of the week or another date part
  (``hour``) differ: the highest and lowest differ by at least 0.25 standard deviations of the
  measure and by 3 standard errors of that difference;
- ``change_point``: the series is better told as two levels than as a line: the best split
  (at least 3 buckets each side) leaves at most 60% of a straight line's squared error, and
  the levels differ by at least twice the spread within them;
- ``time_outlier``: a bucket far from its neighbours: its distance from the median of the 5
  around it is at least 4 robust standard deviations (1.4826 × the median absolute distance)
  of all such distances, and at least 0.1 of the measure's standard deviation, over at least
  12 buckets;
- ``category_outlier`` / ``differs_by``: means by a category differ (the same 0.25-deviation,
  3-standard-error test, over groups of at least 5 rows); when the extreme group is further
  from the next one than that one is from the other end, it stands out (``category_outlier``);
- ``steady_share``: a category's share of a measure's total (of rows, for a measure whose
  values do not add up: ``charts.focus.additive``; none for a panel's rows) per time bucket
  stays within 5 points over at least 6 buckets (a share of rows that never moves by half a
  point is the table's layout, not a finding); a share that moves by 10 points or more is a
  ``trend`` of that share (its numbers name the category's ``value``) when Mann–Kendall says
  so.

Group-bys are capped at GROUPBYS_MAX per call, at GROUPS_MAX groups each, and at SECONDS for
all of them: each runs over all rows only when its foreseen cost fits what is left, else it
groups the sync's 1,000-row sample (and its facts say so). The measures, categories and time
axis come from ``charts.focus``. Means of a time bucket are folded from
the exact values' groups weighted by their rows.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from time import perf_counter
from typing import Any

from charts import data
from charts.columns import Column
from charts.fact import Fact, round_to
from charts.focus import Focus, additive, panel
from streaming import filter as filters
from streaming.aggregate import Aggregate
from streaming.query import RUNNER
from streaming.read import Dataset

GROUPBYS_MAX = 6
SECONDS = 0.6  # for the group-bys over all rows of one call; the rest come from the sample
OUTLIER_SD = 0.1  # a time outlier's least distance, in the measure's standard deviations
FEW_GROUPS = 16  # past this many groups the engine sorts rows by group: dearer
GROUPS_MAX = 20_000
MEASURES = 3  # measures each group-by averages
SERIES_MAX = 60  # time buckets of a series
MIN_SUPPORT = 5  # rows a group needs to be compared
Z_95 = 1.96
Z_99 = 2.58  # a trend's test: several series are tested at once, so p < 0.01
TAU_MIN = 0.3  # and Kendall's tau at least this: most pairs of buckets agree on the way
GAP_SD = 0.25  # the least difference of means worth saying, in the measure's deviations
CYCLES = ("month", "quarter", "weekday", "dow", "hour")  # date parts worth a seasonality
MONTHS = "January February March April May June July August September October November December"
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"


@dataclass
class Group:
    key: Any
    rows: int
    means: dict[str, float | None]


def pattern_facts(
    dataset: Dataset, found: Focus, sample: list[list[Any]], seconds: float = SECONDS
) -> list[Fact]:
    """The facts that the main measures, categories and time axis show: over all rows while
    the group-bys fit in ``seconds``, from the sample after that (``sampled`` in their
    numbers says how many sample rows they rest on)."""
    measures = found.main_measures[:MEASURES]
    if not measures:
        return []
    budget = _Budget(dataset, measures, sample, seconds)
    time_axis = found.time
    cycles = [p for p in found.parts if p.part in CYCLES]
    if time_axis is not None and time_axis.role == "time":  # months come from its days
        cycles = [p for p in cycles if p.part not in ("month", "weekday", "dow")]
    # The group-bys in the order they matter: the main category, the time axis, the second
    # category, the cycles (hour of the day), the main category's shares over time.
    steps: list[tuple[str, list[Column]]] = [("differs_by", found.categories[:1])]
    steps.append(("time", [time_axis] if time_axis is not None else []))
    steps.append(("differs_by", found.categories[1:2]))
    steps += [("seasonality", [part]) for part in cycles[:2]]
    if time_axis is not None and found.categories:
        c = found.categories[0]
        # Shares of a total that adds up, or of rows; a panel's rows (one per time and
        # category) share out evenly by construction, so they say nothing.
        counted = not additive(measures[0])
        if c.distinct * max(time_axis.distinct, 1) <= GROUPS_MAX and not (
            counted and panel(time_axis, c, dataset.rows)
        ):
            steps.append(("shares", [c, time_axis]))
    out: list[Fact] = []
    for kind, by in steps:
        if not by:
            continue
        groups, sampled = budget.run(by)
        if groups is None:
            continue
        if kind == "time":
            facts = _over_time(by[0], groups, measures)
        elif kind == "shares":
            facts = _shares(groups, by[0], by[1], measures[0])
        else:
            facts = [f for m in measures for f in _by_values(m, by[0], groups, kind)]
        out += [_sampled(f, len(sample)) for f in facts] if sampled else facts
    return out


def _sampled(f: Fact, rows: int) -> Fact:
    return replace(f, numbers={**f.numbers, "sampled": rows})


class _Budget:
    """Group-bys of count and the measures' means: at most GROUPBYS_MAX over all rows, each
    run only when its cost, foreseen from the first one's (per row and measure, half again for
    many groups), fits what is left of ``seconds``; the others are grouped from the sample."""

    def __init__(
        self,
        dataset: Dataset,
        measures: Sequence[Column],
        sample: list[list[Any]],
        seconds: float,
    ) -> None:
        self.dataset = dataset
        self.measures = measures
        self.sample = sample
        self.left = GROUPBYS_MAX
        self.seconds = seconds
        self.started = perf_counter()
        self.per_unit: float | None = None  # seconds per million rows and measure, measured
        self.query = filters.parse({}, dataset.meta["columns"])

    def run(self, by: Sequence[Column]) -> tuple[list[Group] | None, bool]:
        """One group per value of ``by``, and whether they come from the sample (None when
        over all rows they pass GROUPS_MAX)."""
        units = max(self.dataset.rows, 1) / 1e6 * (1 + len(self.measures))
        many = math.prod(c.distinct for c in by) > FEW_GROUPS
        foreseen = (self.per_unit or 0.0) * units * (1.5 if many else 1.0)
        left = self.seconds - (perf_counter() - self.started)
        if self.left <= 0 or left <= 0 or foreseen > left:
            return self._from_sample(by), True
        self.left -= 1
        started = perf_counter()
        aggregates = [Aggregate("count", None, None)]
        aggregates += [Aggregate("mean", m.name, m.position) for m in self.measures]
        rows, truncated = RUNNER.groups(
            self.dataset, self.query, [c.position for c in by], aggregates, GROUPS_MAX
        )
        if self.per_unit is None:
            self.per_unit = (perf_counter() - started) / units / (1.5 if many else 1.0)
        if truncated:
            return None, False
        names = [c.name for c in by]
        return [
            Group(
                tuple(r[n] for n in names) if len(names) > 1 else r[names[0]],
                r["count"],
                {m.name: r.get(a.name) for m, a in zip(self.measures, aggregates[1:])},
            )
            for r in rows
        ], False

    def _from_sample(self, by: Sequence[Column]) -> list[Group]:
        cells: dict[Any, tuple[list[int], dict[str, list[float]]]] = {}
        for row in self.sample:
            values = tuple(row[c.position] for c in by)
            key = values if len(by) > 1 else values[0]
            count, sums = cells.setdefault(key, ([0], {}))
            count[0] += 1
            for m in self.measures:
                if row[m.position] is not None:
                    sums.setdefault(m.name, []).append(row[m.position])
        return [
            Group(
                key,
                count[0],
                {
                    m.name: statistics.fmean(sums[m.name]) if sums.get(m.name) else None
                    for m in self.measures
                },
            )
            for key, (count, sums) in cells.items()
        ]


# --- Over time -------------------------------------------------------------------------------


def _over_time(time: Column, groups: list[Group], measures: Sequence[Column]) -> list[Fact]:
    out: list[Fact] = []
    buckets, unit = _bucketed(time, groups)
    for m in measures:
        series = [(k, v) for k, v in _means(buckets, m.name) if v is not None]
        out += _trend(m, time, series, unit)
        out += _change_point(m, time, series)
        out += _time_outlier(m, time, series)
    if time.role == "time":  # months of the year and days of the week, folded from the days
        for part, key in (("month", _month), ("weekday", _weekday)):
            folded = _fold(groups, key)
            if len(folded) >= 3 and _spans_cycles(time, part):
                for m in measures:
                    out += _by_values(m, time, folded, "seasonality", part)
    return out


def _bucketed(time: Column, groups: list[Group]) -> tuple[list[Group], str]:
    """The groups of a time axis folded into at most SERIES_MAX buckets, in order."""
    keyed = [g for g in groups if g.key is not None]
    if time.role != "time":
        return sorted(keyed, key=lambda g: g.key), time.part or "value"
    unit = _unit(time)
    folded = _fold(keyed, lambda k: data.truncate(str(k), unit))
    return sorted(folded, key=lambda g: g.key), unit


def _unit(time: Column) -> str:
    """The finest time bucket that splits a time column's span into SERIES_MAX or fewer."""
    low, high = str(time.stats.get("min")), str(time.stats.get("max"))
    return data.time_unit(low, high, time.kind, SERIES_MAX)


def _fold(groups: Sequence[Group], key: Any) -> list[Group]:
    """Groups merged by ``key`` of their keys, their means weighted by rows."""
    cells: dict[Any, Group] = {}
    totals: dict[Any, dict[str, list[float]]] = {}
    for g in groups:
        if g.key is None:
            continue
        k = key(g.key)
        cell = cells.setdefault(k, Group(k, 0, {}))
        cell.rows += g.rows
        for name, mean in g.means.items():
            if mean is not None:
                sums = totals.setdefault(k, {}).setdefault(name, [0.0, 0])
                sums[0] += mean * g.rows
                sums[1] += g.rows
    for k, cell in cells.items():
        names = {n for g in groups for n in g.means}
        cell.means = {
            n: (s[0] / s[1] if (s := totals.get(k, {}).get(n)) and s[1] else None) for n in names
        }
    return list(cells.values())


def _month(key: Any) -> int:
    return int(str(key)[5:7])


def _weekday(key: Any) -> int:
    return date.fromisoformat(str(key)[:10]).weekday()


def _spans_cycles(time: Column, part: str) -> bool:
    """Whether a time axis covers a part's cycle at least once: a year for months, four weeks
    for weekdays."""
    low, high = time.stats.get("min"), time.stats.get("max")
    if low is None or high is None:
        return False
    days = (date.fromisoformat(str(high)[:10]) - date.fromisoformat(str(low)[:10])).days
    return days >= (360 if part == "month" else 28)


def _means(groups: Sequence[Group], name: str) -> list[tuple[Any, float | None]]:
    return [(g.key, g.means.get(name)) for g in groups]


def mann_kendall(values: Sequence[float]) -> tuple[float, float]:
    """Mann–Kendall's z (ties ignored in the variance) and Kendall's tau of a series."""
    n = len(values)
    s = sum(
        (values[j] > values[i]) - (values[j] < values[i]) for i in range(n) for j in range(i + 1, n)
    )
    variance = n * (n - 1) * (2 * n + 5) / 18
    z = (s - (1 if s > 0 else -1 if s < 0 else 0)) / math.sqrt(variance) if variance else 0.0
    return z, s / (n * (n - 1) / 2)


def sen_slope(values: Sequence[float]) -> float:
    """The median of the slopes between every two points of a series (per step)."""
    slopes = [
        (values[j] - values[i]) / (j - i)
        for i in range(len(values))
        for j in range(i + 1, len(values))
    ]
    return statistics.median(slopes) if slopes else 0.0


def _trend(m: Column, time: Column, series: list[tuple[Any, float]], unit: str) -> list[Fact]:
    values = [v for _, v in series]
    if len(values) < 6:
        return []
    z, tau = mann_kendall(values)
    if abs(z) < Z_99 or abs(tau) < TAU_MIN:
        return []
    change = sen_slope(values) * (len(values) - 1)
    numbers = {
        "z": round_to(z, 3),
        "tau": round_to(tau, 3),
        "change": round_to(change, 6),
        "first": series[0][0],
        "last": series[-1][0],
        "start_mean": round_to(values[0], 6),
        "end_mean": round_to(values[-1], 6),
        "buckets": len(values),
        "unit": unit,
    }
    return [Fact("trend", (m.name, time.name), numbers, 0.5 + 0.35 * abs(tau))]


def _change_point(m: Column, time: Column, series: list[tuple[Any, float]]) -> list[Fact]:
    values = [v for _, v in series]
    n = len(values)
    if n < 8:
        return []
    line = _line_error(values)
    best: tuple[float, int] | None = None
    for k in range(3, n - 2):
        error = _sse(values[:k]) + _sse(values[k:])
        if best is None or error < best[0]:
            best = (error, k)
    assert best is not None
    error, k = best
    before, after = statistics.fmean(values[:k]), statistics.fmean(values[k:])
    within = math.sqrt(error / max(n - 2, 1))
    if line <= 0 or error > 0.6 * line or abs(after - before) < 2 * within:
        return []
    numbers = {
        "at": series[k][0],
        "before": round_to(before, 6),
        "after": round_to(after, 6),
        "buckets": n,
    }
    return [Fact("change_point", (m.name, time.name), numbers, 0.6)]


def _time_outlier(m: Column, time: Column, series: list[tuple[Any, float]]) -> list[Fact]:
    values = [v for _, v in series]
    n = len(values)
    if n < 12:
        return []
    distances = [values[i] - statistics.median(values[max(0, i - 2) : i + 3]) for i in range(n)]
    spread = 1.4826 * statistics.median(abs(d) for d in distances)
    if spread <= 0:
        return []
    i = max(range(n), key=lambda j: abs(distances[j]))
    score = abs(distances[i]) / spread
    if score < 4 or abs(distances[i]) < OUTLIER_SD * (m.stats.get("stddev") or 0):
        return []
    numbers = {
        "at": series[i][0],
        "mean": round_to(values[i], 6),
        "expected": round_to(values[i] - distances[i], 6),
        "robust_z": round_to(score, 3),
    }
    return [Fact("time_outlier", (m.name, time.name), numbers, 0.5)]


def _sse(values: Sequence[float]) -> float:
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values)


def _line_error(values: Sequence[float]) -> float:
    """The squared error left by the least-squares line through a series."""
    n = len(values)
    mx, my = (n - 1) / 2, statistics.fmean(values)
    sxx = math.fsum((i - mx) ** 2 for i in range(n))
    slope = math.fsum((i - mx) * (v - my) for i, v in enumerate(values)) / sxx
    return math.fsum((v - my - slope * (i - mx)) ** 2 for i, v in enumerate(values))


# --- Across categories and date parts --------------------------------------------------------


def _by_values(
    m: Column, by: Column, groups: Sequence[Group], kind: str, part: str | None = None
) -> list[Fact]:
    """Means of ``m`` by the values of ``by``: a fact when the extremes differ enough."""
    sd = m.stats.get("stddev") or 0
    means: list[tuple[float, Any, int]] = sorted(
        (
            (mean, g.key, g.rows)
            for g in groups
            if g.key is not None
            and g.rows >= MIN_SUPPORT
            and (mean := g.means.get(m.name)) is not None
        ),
        key=lambda item: item[0],
    )
    if len(means) < 2 or sd <= 0:
        return []
    (low, low_key, low_n), (high, high_key, high_n) = means[0], means[-1]
    gap = high - low
    if gap < GAP_SD * sd or gap < 3 * sd * math.sqrt(1 / low_n + 1 / high_n):
        return []
    numbers: dict[str, Any] = {
        "highest": {"value": _named(high_key, part or by.part), "mean": round_to(high, 6)},
        "lowest": {"value": _named(low_key, part or by.part), "mean": round_to(low, 6)},
        "gap_sd": round_to(gap / sd, 3),
        "groups": len(means),
    }
    numbers["highest"]["rows"], numbers["lowest"]["rows"] = high_n, low_n
    weight = 0.45 + 0.3 * min(1.0, gap / sd)
    if kind == "seasonality":
        numbers["by"] = part or by.part or by.name
        return [Fact("seasonality", (m.name, by.name), numbers, weight)]
    if len(means) >= 3:
        runner_up, other_end = means[-2][0], means[0][0]
        bottom_next = means[1][0]
        if high - runner_up >= runner_up - other_end:
            numbers["stands_out"] = "highest"
            numbers["next"] = round_to(runner_up, 6)
            return [Fact("category_outlier", (m.name, by.name), numbers, weight + 0.05)]
        if bottom_next - low >= high - bottom_next:
            numbers["stands_out"] = "lowest"
            numbers["next"] = round_to(bottom_next, 6)
            return [Fact("category_outlier", (m.name, by.name), numbers, weight + 0.05)]
    return [Fact("differs_by", (m.name, by.name), numbers, weight)]


def _named(key: Any, part: str | None) -> Any:
    """A date part's value in words where it has them: month 7 is July, weekday 0 Monday."""
    if part == "month" and isinstance(key, int) and 1 <= key <= 12:
        return MONTHS.split()[key - 1]
    if part == "weekday" and isinstance(key, int) and 0 <= key <= 6:
        return WEEKDAYS.split()[key]
    return key


def _shares(groups: list[Group], category: Column, time: Column, measure: Column) -> list[Fact]:
    """The main category's shares of the main measure's total (of rows, for a measure whose
    values do not add up) over time."""
    summed = additive(measure)
    unit = _unit(time) if time.role == "time" else None
    totals: dict[Any, dict[Any, float]] = {}
    for g in groups:
        value, moment = g.key
        if moment is None:
            continue
        mean = g.means.get(measure.name)
        amount = (mean or 0.0) * g.rows if summed else float(g.rows)
        bucket = data.truncate(str(moment), unit) if unit else moment
        cell = totals.setdefault(bucket, {})
        cell[value] = cell.get(value, 0.0) + amount
    buckets = sorted(totals)
    if len(buckets) < 6:
        return []
    out: list[Fact] = []
    values = {v for cell in totals.values() for v in cell}
    of = measure.name if summed else "rows"
    for value in values:
        shares = [totals[b].get(value, 0.0) / (sum(totals[b].values()) or 1.0) for b in buckets]
        if not summed and max(shares) - min(shares) <= 0.005:
            continue  # rows shared out by the table's layout (a country a year), not a finding
        if max(shares) - min(shares) <= 0.05 and statistics.fmean(shares) >= 0.05:
            numbers = {"value": value, "share": round_to(statistics.fmean(shares), 3), "of": of}
            numbers["low"], numbers["high"] = round_to(min(shares), 3), round_to(max(shares), 3)
            out.append(Fact("steady_share", (category.name, time.name), numbers, 0.4))
            continue
        z, tau = mann_kendall(shares)
        if abs(z) >= Z_95 and max(shares) - min(shares) >= 0.1:
            numbers = {"value": value, "of": of, "z": round_to(z, 3), "tau": round_to(tau, 3)}
            numbers["first"], numbers["last"] = buckets[0], buckets[-1]
            numbers["start_share"], numbers["end_share"] = (
                round_to(shares[0], 3),
                round_to(shares[-1], 3),
            )
            named = (measure.name,) if summed else ()
            columns = (*named, category.name, time.name)
            out.append(Fact("trend", columns, numbers, 0.5 + 0.3 * abs(tau)))
    out.sort(key=lambda f: -f.weight)
    return out[:2]
