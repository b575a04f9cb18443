"""Recommended charts: the ones worth looking at first, scored from statistics, best first.

Example::

    with open_dataset(store, jobs, "ds_3f9a2c41b7d0") as dataset:
        for item in recommend(dataset, limit=8):
            print(item["score"], item["title"], "—", item["reason"])
    # 0.98 Mean dep delay by carrier — The first question: which carrier has the highest …

Recommending reads no rows: columns come with the roles the sync gave them (``charts.columns``,
``streaming.roles``), the table's main measures, categories and time axis come from
``charts.focus``, and the facts that choose charts from ``charts.profile.survey`` over the
sync's 1,000-row sample (``seconds=0``: no group-by). Only the specs of the charts finally
chosen are built, by ``charts.spec.chart``; most come from the statistics or the sample too (a
histogram, counts of a column with at most 10 values, a scatter), and a line, a heatmap or a
bar of a measure cost one group-by each.

First the obvious questions, in this order (scores 0.98, 0.96, 0.94, 0.92 × completeness),
placed before anything else: the main measure's mean by the main category; its mean over the
time axis (one line per category when the table is a panel); its distribution; the main
category's counts, when they differ. Then a chart for each of the 12 strongest facts that one
shows (a trend or change as a line, a category's outlier as a bar, a correlation as a scatter,
a skew as a histogram), scored 0.8 + 0.1 × the fact's weight (at most 0.9) × completeness,
its reason the fact in words. Then the rest, each scored in [0, 1]: a base for how effective
the chart type is for its data types (Voyager's type-to-channel ranking: time on x beats
everything for a measure; a quantitative distribution on a position axis; nominal on position
beats nominal on color; two quantities on x and y; a pie never: angles read worst), times
factors:

- line of a measure's mean over time: 0.80 × completeness of both (rows over time: 0.72);
- histogram of a measure: 0.70 × completeness, +0.10 for a skewed distribution (quantiles);
- bar of a category's counts: 0.68 × completeness × cardinality (1.0 for 3–12 values, 0.9 to
  20, 0.75 to 50, 0.85 for two), ×0.6 when one value holds over 90% of the rows;
- bar of a measure's mean by a category: 0.50 + 0.40 × η (the correlation ratio, in the
  sample), when η ≥ 0.2;
- scatter of two measures: 0.45 + 0.45 × |r| (Pearson's, in the sample);
- heatmap of two categories of at most 30 values each: 0.40 + 0.40 × Cramér's V (sample).

Identifiers, clock times and date parts are never measures, so never averaged or binned here;
a pair derived one from the other (``charts.profile.derived_facts``) is never drawn together.
Completeness is ``0.5 + 0.5 × (non-null share)``. After the obvious ones, ranking is greedy,
for variety: each chart's score is multiplied by 0.9 for every chart of the same kind already
chosen and by 0.95 for every use of one of its columns, and the best adjusted score is taken
next (never above the one before); at most MAX_SCANS of the charts chosen may need a scan of
the rows, so the whole answer costs at most that many.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from charts import association, data, findings, words
from charts.columns import CATEGORY_MAX, Column
from charts.fact import Fact
from charts.focus import Focus, panel
from charts.profile import Survey, survey
from charts.spec import chart
from streaming import filter as filters
from streaming.errors import BadRequest
from streaming.read import Dataset

log = logging.getLogger(__name__)

HEATMAP_MAX = 30
DEFAULT_MAX_GROUPS = 10_000
MAX_SCANS = 3  # charts that read the rows, among those recommended (each costs a scan)


@dataclass(frozen=True)
class Candidate:
    kind: str
    score: float
    reason: str
    columns: tuple[str, ...]
    mark: str
    x: str | None = None
    y: str | None = None
    color: str | None = None
    aggregate: str | None = None
    scans: bool = True  # whether its chart reads the rows (not only statistics or the sample)
    obvious: bool = False  # one of the questions anyone asks first: placed first, in order


def recommend(
    dataset: Dataset, limit: int = 8, *, max_groups: int = DEFAULT_MAX_GROUPS
) -> list[dict[str, Any]]:
    """Up to ``limit`` charts, best first: ``{"title", "reason", "score", "spec"}``.

    The facts that choose charts come from the sample alone (``seconds=0``): the charts
    themselves then read all rows, and the answer pays for them, not for the facts twice."""
    found = survey(dataset, seconds=0.0)
    query = filters.parse({}, dataset.meta["columns"])  # every row
    out = []
    for c in _ranked(_candidates(found), limit):
        try:
            spec = chart(
                dataset, query, c.mark, c.x, c.y, c.color, c.aggregate, None, max_groups=max_groups
            )
        except BadRequest:  # a chart the rules should not have proposed: never the answer's end
            log.warning("recommended chart %s of %s is not drawable", c, dataset.id)
            continue
        title = spec["title"] if isinstance(spec["title"], str) else spec["title"]["text"]
        out.append({"title": title, "reason": c.reason, "score": round(c.score, 3), "spec": spec})
    return out


def _candidates(found: Survey) -> list[Candidate]:
    """The obvious questions first, then the charts of the strongest facts, then the rest
    (each kind scored as the module says), derived pairs left out."""
    profiles, rows, main = found.columns, found.sample, found.focus
    assert main is not None
    derived = {frozenset(f.columns) for f in found.facts if f.kind == "derived"}
    measures = main.measures[:8]  # those derived from another column last
    categories = main.categories
    out = _obvious(main, measures, found.rows)
    out += _of_facts(found.facts, profiles, main)
    for m in measures:
        out.append(_histogram(m))
    for c in categories:
        out.append(_bar(c))
    if main.time is not None and main.time.role == "time":
        out.extend(_lines(main.time, measures, rows))
    out.extend(_scatters(measures, rows, derived))
    out.extend(_heatmaps(categories, rows, derived))
    out.extend(_measure_bars(categories, measures, rows))
    return _distinct(out)


OBVIOUS = 0.98  # the obvious questions' scores, in their order, before completeness


def _obvious(main: Focus, measures: Sequence[Column], rows: int) -> list[Candidate]:
    """What anyone opening the table asks first: the main measure by the main category and
    over time, its distribution, and the main category's counts."""
    out: list[Candidate] = []
    m = measures[0] if measures else None
    c = main.categories[0] if main.categories else None
    t = main.time
    score = OBVIOUS
    if m is not None and c is not None:
        reason = (
            f"The first question: which {words.words(c.name)} has the highest mean "
            f"{words.words(m.name)}"
        )
        out.append(_measure_bar(c, m, score * m.completeness, reason))
        score -= 0.02
    if m is not None and t is not None:
        color = c if c is not None and panel(t, c, rows) else None
        span = f"{t.stats.get('min')} to {t.stats.get('max')}"
        reason = f"How {words.words(m.name)} moves over {words.words(t.name)}, {span}"
        if color is not None:
            reason += f", one line per {words.words(color.name)}"
        out.append(
            Candidate(
                "line",
                score * m.completeness,
                reason,
                (t.name, m.name) + ((color.name,) if color else ()),
                "line",
                x=t.name,
                y=m.name,
                color=color.name if color else None,
                aggregate="mean",
            )
        )
        score -= 0.02
    if m is not None:
        histogram = _histogram(m)
        reason = histogram.reason.replace("How", "How the main measure,", 1)
        out.append(replace(histogram, score=score * m.completeness, reason=reason))
        score -= 0.02
    if c is not None and _uneven(c):
        bar = _bar(c)
        out.append(replace(bar, score=score * c.completeness))
    return [replace(o, obvious=True) for o in out]


def _uneven(c: Column) -> bool:
    """Whether a category's counts differ enough to be worth a chart (the largest at least
    1.2 times the smallest listed), or say nothing about that."""
    top = c.stats.get("top") or []
    counts = [t["count"] for t in top]
    return len(counts) < 2 or max(counts) >= 1.2 * min(counts)


SURPRISE = 0.8  # a fact's chart scores this + 0.1 × its weight (≤ 0.9), × completeness


def _of_facts(facts: Sequence[Fact], profiles: Sequence[Column], main: Focus) -> list[Candidate]:
    """A chart for each of the strongest facts that one can show, its reason the fact."""
    by_name = {c.name: c for c in profiles}
    out = []
    for f in facts[:12]:
        drawn = _fact_chart(f, by_name, main)
        if drawn is not None:
            complete = math.prod(by_name[n].completeness for n in drawn.columns)
            out.append(replace(drawn, score=min(0.9, SURPRISE + 0.1 * f.weight) * complete))
    return out


def _fact_chart(f: Fact, by_name: dict[str, Column], main: Focus) -> Candidate | None:
    said = _said(f)
    columns = [by_name[n] for n in f.columns if n in by_name]
    roles = tuple(c.role for c in columns)
    if f.kind in ("differs_by", "category_outlier", "seasonality") and len(columns) == 2:
        m, c = columns
        if m.role != "measure":
            return None
        if c.role == "time":  # a month or weekday pattern of a date: no chart draws months
            return None  # of the year yet, and the line over time is among the obvious ones
        return _measure_bar(c, m, 0.0, said)
    if f.kind in ("trend", "change_point", "time_outlier") and roles == ("measure", "time"):
        m, t = columns
        return _line(t, m, said)
    if f.kind in ("trend", "change_point", "time_outlier") and roles == ("measure", "date_part"):
        m, t = columns
        return _line(t, m, said)
    if f.kind == "trend" and len(columns) == 3:  # a share of a sum moving: a line per category
        m, c, t = columns
        return Candidate(
            "line", 0.0, said, (t.name, m.name, c.name), "line", t.name, m.name, c.name, "sum"
        )
    if f.kind == "trend" and len(columns) == 2 and columns[0].role == "category":
        c, t = columns  # a share of rows moving: rows over time, a line per category
        return Candidate("line", 0.0, said, (t.name, c.name), "line", x=t.name, color=c.name)
    if f.kind == "correlation" and len(columns) == 2:
        a, b = columns
        return Candidate(
            "scatter", 0.0, said, (a.name, b.name), "point", a.name, b.name, scans=False
        )
    if f.kind in ("skew", "outliers") and columns:
        return replace(_histogram(columns[0]), reason=said)
    if f.kind == "association" and len(columns) == 2:
        a, b = columns
        return Candidate("heatmap", 0.0, said, (a.name, b.name), "rect", a.name, b.name)
    return None


def _said(f: Fact) -> str:
    """A fact in words, as the reason for its chart."""
    said = findings.said(f)
    return f"{said['title']}: {said['detail']}"


def _line(t: Column, m: Column, reason: str) -> Candidate:
    return Candidate(
        "line", 0.0, reason, (t.name, m.name), "line", x=t.name, y=m.name, aggregate="mean"
    )


def _measure_bar(c: Column, m: Column, score: float, reason: str) -> Candidate:
    return Candidate(
        "bar", score, reason, (c.name, m.name), "bar", x=c.name, y=m.name, aggregate="mean"
    )


def _distinct(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per chart (the first, best-placed one)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for c in candidates:
        key = (c.mark, c.x, c.y, c.color, c.aggregate)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _informative(p: Column) -> float:
    """How much a measure's distribution can show: complete, many values, some spread."""
    spread = 1.0 if (p.stats.get("stddev") or 0) > 0 else 0.3
    return p.completeness * spread * (1.0 if p.distinct >= 20 else 0.8)


def _histogram(m: Column) -> Candidate:
    q = m.stats.get("quantiles") or {}
    reason = f"How {words.words(m.name)} is distributed"
    score = 0.70 * m.completeness
    low, mid, high = q.get("p05"), q.get("p50"), q.get("p95")
    if low is not None and mid is not None and high is not None and high > low:
        skew = ((high - mid) - (mid - low)) / (high - low)
        if abs(skew) > 0.3:
            score += 0.10
            reason += f": skewed {'right' if skew > 0 else 'left'}, median {words.number(mid)}"
        else:
            spread = f"90% between {words.number(low)} and {words.number(high)}"
            reason += f": median {words.number(mid)}, {spread}"
    return Candidate("histogram", score, reason, (m.name,), "histogram", x=m.name, scans=False)


def _bar(c: Column) -> Candidate:
    d = c.distinct
    cardinality = 0.85 if d == 2 else 1.0 if d <= 12 else 0.9 if d <= 20 else 0.75
    top = c.stats.get("top") or []
    score = 0.68 * cardinality * c.completeness
    reason = f"Rows for each of the {d:,} values of {words.words(c.name)}"
    if top and c.count:
        share = top[0]["count"] / c.count
        if share > 0.9:
            score *= 0.6
        reason += f"; the most frequent, {words.value(top[0]['value'])}, holds {share:.0%}"
    listed = sum(t["count"] for t in top) == c.count and bool(c.stats.get("distinct_exact"))
    return Candidate("bar", score, reason, (c.name,), "bar", x=c.name, scans=not listed)


def _lines(t: Column, measures: Sequence[Column], rows: list[list[Any]]) -> list[Candidate]:
    """Rows over time, and the measure whose mean moves most over time (η of the measure by
    time bucket, in the sample)."""
    span = f"{t.stats.get('min')} to {t.stats.get('max')}"
    unit = data.time_unit(str(t.stats.get("min")), str(t.stats.get("max")), t.kind, 24)
    bucketed = [
        [data.truncate(r[t.position], unit) if r[t.position] is not None else None, *r]
        for r in rows
    ]
    moving = sorted(
        measures,
        key=lambda m: -(association.eta(bucketed, 0, m.position + 1) or 0) * m.completeness,
    )
    out = [
        Candidate(
            "line",
            0.72 * t.completeness,
            f"Rows over {words.words(t.name)}, {span}",
            (t.name,),
            "line",
            x=t.name,
        )
    ]
    for m in moving[:1]:
        out.append(
            Candidate(
                "line",
                0.80 * t.completeness * m.completeness,
                f"How mean {words.words(m.name)} changes over {words.words(t.name)}, {span}",
                (t.name, m.name),
                "line",
                x=t.name,
                y=m.name,
                aggregate="mean",
            )
        )
    return out


def _scatters(
    measures: Sequence[Column], rows: list[list[Any]], derived: set[frozenset[str]]
) -> list[Candidate]:
    found = []
    for a, b in combinations(measures, 2):
        if frozenset((a.name, b.name)) in derived:
            continue
        r = association.pearson(rows, a.position, b.position)
        if r is None:
            continue
        strength = "strongly" if abs(r) >= 0.7 else "moderately" if abs(r) >= 0.3 else "weakly"
        reason = (
            f"{words.title(a.name)} and {words.words(b.name)} are {strength} correlated "
            f"(r = {r:.2f} in a sample of {len(rows):,} rows)"
        )
        score = 0.45 + 0.45 * abs(r)
        found.append(
            Candidate(
                "scatter", score, reason, (a.name, b.name), "point", a.name, b.name, scans=False
            )
        )
    found.sort(key=lambda c: -c.score)
    return found[:1] + [c for c in found[1:] if c.score >= 0.45 + 0.45 * 0.3]


def _heatmaps(
    categories: Sequence[Column], rows: list[list[Any]], derived: set[frozenset[str]]
) -> list[Candidate]:
    small = [c for c in categories if c.distinct <= HEATMAP_MAX]
    found = []
    for a, b in combinations(small, 2):
        if frozenset((a.name, b.name)) in derived:
            continue
        v = association.cramers_v(rows, a.position, b.position)
        if v is None:
            continue
        reason = (
            f"How often each {words.words(a.name)} meets each {words.words(b.name)} "
            f"(association V = {v:.2f} in the sample)"
        )
        found.append(
            Candidate("heatmap", 0.40 + 0.40 * v, reason, (a.name, b.name), "rect", a.name, b.name)
        )
    found.sort(key=lambda c: -c.score)
    return found[:1] + [c for c in found[1:] if c.score >= 0.40 + 0.40 * 0.3]


def _measure_bars(
    categories: Sequence[Column], measures: Sequence[Column], rows: list[list[Any]]
) -> list[Candidate]:
    found = []
    for c in categories:
        if c.distinct > CATEGORY_MAX:
            continue
        for m in measures[:4]:
            eta = association.eta(rows, c.position, m.position)
            if eta is None or eta < 0.2:
                continue
            reason = (
                f"Mean {words.words(m.name)} differs across {words.words(c.name)} "
                f"(correlation ratio {eta:.2f} in the sample)"
            )
            found.append(
                Candidate(
                    "bar",
                    0.50 + 0.40 * eta,
                    reason,
                    (c.name, m.name),
                    "bar",
                    x=c.name,
                    y=m.name,
                    aggregate="mean",
                )
            )
    found.sort(key=lambda c: -c.score)
    return found[:2]


def _ranked(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """The obvious questions first, as they come; then greedy, for variety: repeated kinds and
    columns weigh less each time (and no chart scores above the one before it)."""
    chosen: list[Candidate] = []
    scans = 0
    kinds: dict[str, int] = {}
    uses: dict[str, int] = {}
    pool = list(candidates)
    while pool and len(chosen) < limit:

        def adjusted(c: Candidate) -> float:
            repeats = sum(uses.get(n, 0) for n in c.columns)
            return c.score * 0.9 ** kinds.get(c.kind, 0) * 0.95**repeats

        pinned = [c for c in pool if c.obvious]
        best = pinned[0] if pinned else max(pool, key=adjusted)
        pool.remove(best)
        if best.scans and scans >= MAX_SCANS:
            continue
        scans += best.scans
        score = best.score if best.obvious else adjusted(best)
        chosen.append(replace(best, score=min([score, *(c.score for c in chosen[-1:])])))
        kinds[best.kind] = kinds.get(best.kind, 0) + 1
        for n in best.columns:
            uses[n] = uses.get(n, 0) + 1
    return chosen
