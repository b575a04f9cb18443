"""A dataset's profile: what the LLM reads instead of the rows, in at most BUDGET bytes.

Example::

    with open_dataset(store, jobs, "ds_3f9a2c41b7d0") as dataset:
        body = profile(dataset)              # a dict whose JSON is at most 8 KiB
        body = profile(dataset, "arr_delay")  # one column

It reads ``meta.json``, ``stats.json`` and the sync's uniform sample of 1,000 rows, and runs a
few group-bys over all rows (``charts.patterns``: at most six, stopped at 0.6 s, the rest over
the sample), so it costs about the same for a million rows or a billion. It holds:

- per column: its type and role (``streaming.roles``: measure, category, time, date_part,
  clock, identifier, text, constant, empty), null share, distinct count, then min, max, mean,
  stddev and quantiles (numbers), min and max (dates), or top values (everything else), and a
  few short example values;
- ``focus``: the main measures, categories and time axis (``charts.focus``);
- facts computed by the server (``facts``), best first (facts about the main measures weigh
  most, and each kind already placed makes the next of it weigh 0.85 less), each with the
  numbers behind it;
- a handful of sample rows (or, for one column, some of its distinct values).

Texts are cut (40 characters, then less) and so are column names (64). When a wide table does
not fit the budget, the profile sheds detail in steps — fewer sample rows, shorter texts, fewer
top values and examples — and past the last step it leaves out the columns that do not fit,
saying how many (``omitted_columns``).

Facts, and when they are stated:

- ``missing``: a column with 5% or more nulls; ``empty``: all null; ``constant``: one value;
- ``identifier``: a column whose values are (nearly) all distinct, a row key;
- ``dominant``: one value holds half or more of a category's values;
- ``skew``: Kelly's skewness, (p95 + p05 − 2 × median) / (p95 − p05), of 0.3 or more in size;
- ``outliers``: values past Tukey's far fences (Q1 − 3 IQR, Q3 + 3 IQR), with the share of the
  sample beyond them;
- ``date_range``: a date or datetime column's first and last day and its span;
- from the sample: ``derived`` (one column follows from another: |r| ≥ 0.98, a function in
  the sample, or a category with η ≥ 0.95 on a measure; said once, weight 0.15, and the pair is
  then neither correlated, compared nor charted), ``correlation`` (Pearson's r of two measures,
  |r| ≥ 0.5; ×0.7 for two of one family, ``sched_dep_time`` and ``dep_time``),
  ``association`` (two categories, Cramér's V ≥ 0.5) and ``differs_by`` (a measure's mean
  across a category's values, correlation ratio η ≥ 0.3, with its highest and lowest group of
  5 sample rows or more) for the pairs the group-bys did not cover;
- from the group-bys (``charts.patterns``): ``trend``, ``seasonality``, ``change_point``,
  ``time_outlier``, ``differs_by``, ``category_outlier`` and ``steady_share``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import combinations
from typing import Any

import orjson

from charts import association
from charts.columns import Column, columns_and_sample
from charts.fact import Fact, round_to
from charts.focus import Focus, focus
from charts.patterns import SECONDS, pattern_facts
from streaming.read import Dataset
from streaming.roles import words_of

__all__ = ["Fact", "Survey", "build", "profile", "survey"]

BUDGET = 8192  # bytes of the profile's JSON
NAME_MAX = 64
FACTS_MAX = 12
SAMPLE_VALUES = 20  # distinct values of the one column of a column profile
PAIR_COLUMNS = 8  # measures (and categories) compared pairwise in the sample


@dataclass(frozen=True)
class Detail:
    """How much of each column a profile shows; BUDGET is met by stepping down this ladder."""

    rows: int
    top: int
    examples: int
    text: int


LADDER = (
    Detail(rows=5, top=5, examples=3, text=40),
    Detail(rows=3, top=3, examples=2, text=24),
    Detail(rows=1, top=3, examples=1, text=16),
    Detail(rows=0, top=2, examples=0, text=12),
    Detail(rows=0, top=1, examples=0, text=8),
)


@dataclass
class Survey:
    """What the profile is made from: the columns' profiles, the sample, and the facts."""

    name: str
    rows: int
    columns: list[Column]
    sample: list[list[Any]]
    facts: list[Fact]
    focus: Focus | None = None


def survey(dataset: Dataset, *, seconds: float = SECONDS) -> Survey:
    """Give every column its role and find the facts: from the statistics and the sample, and
    from a few group-bys (``charts.patterns``) over all rows for up to ``seconds`` (then over
    the sample)."""
    columns, sample = columns_and_sample(dataset)
    derived, pairs = derived_facts(columns, sample)
    main = focus(columns, sample, pairs)
    found = [f for c in columns for f in column_facts(c, dataset.rows, sample)]
    grouped = pattern_facts(dataset, main, sample, seconds)
    grouped = [f for f in grouped if frozenset(f.columns[:2]) not in pairs]
    found += derived + pair_facts(columns, sample, pairs, {f.columns[:2] for f in grouped})
    found += grouped
    found = _varied(_weighed(found, main))
    name = dataset.meta.get("name") or dataset.id
    return Survey(name, dataset.rows, columns, sample, found, main)


MEASURE_WEIGHTS = (1.0, 0.95, 0.85)  # a fact's weight by its best measure's rank; then 0.75


def _weighed(found: list[Fact], main: Focus) -> list[Fact]:
    """Facts about the main measures first: a fact weighs MEASURE_WEIGHTS of itself by the rank
    of the best-ranked measure it names (facts naming no measure keep their weight)."""
    ranks = {c.name: i for i, c in enumerate(main.measures)}
    out = []
    for f in found:
        named = [ranks[n] for n in f.columns if n in ranks]
        if named:
            rank = min(named)
            factor = MEASURE_WEIGHTS[rank] if rank < len(MEASURE_WEIGHTS) else 0.75
            f = replace(f, weight=f.weight * factor)
        out.append(f)
    return out


VARIETY = 0.85  # each fact of a kind already placed makes the next one of it weigh this much less


def _varied(found: list[Fact]) -> list[Fact]:
    """Facts best first, for variety: greedy, each kind's weight times VARIETY for every fact
    of that kind placed before it (the facts keep their own weights)."""
    pool = sorted(found, key=lambda f: -f.weight)
    placed: dict[str, int] = {}
    out = []
    while pool:
        best = max(pool, key=lambda f: f.weight * VARIETY ** placed.get(f.kind, 0))
        pool.remove(best)
        placed[best.kind] = placed.get(best.kind, 0) + 1
        out.append(best)
    return out


def profile(dataset: Dataset, column: str | None = None) -> dict[str, Any]:
    """The profile of a dataset (or of one of its columns), at most BUDGET bytes of JSON."""
    return build(survey(dataset), column)


def build(found: Survey, column: str | None = None) -> dict[str, Any]:
    """Lay a survey out as the profile, stepping down the ladder until it fits the budget."""
    body: dict[str, Any] = {}
    for detail in LADDER:
        body = _layout(found, column, detail)
        if len(orjson.dumps(body)) <= BUDGET:
            return body
    return _shed(_fit_columns(body))


def facts_of(found: Survey, column: str | None) -> list[Fact]:
    """The facts about one column (all of them when ``column`` is None), best first."""
    if column is None:
        return found.facts
    return [f for f in found.facts if column in f.columns]


def _layout(found: Survey, column: str | None, detail: Detail) -> dict[str, Any]:
    shown = [c for c in found.columns if column is None or c.name == column]
    body: dict[str, Any] = {
        "dataset": {"name": _short(found.name, 80), "rows": found.rows},
        "columns": [_column(c, found.sample, detail) for c in shown],
        "facts": [_fact_json(f, detail.text) for f in facts_of(found, column)[:FACTS_MAX]],
    }
    if column is None:
        body["dataset"]["columns"] = len(found.columns)
        if found.focus is not None:
            body["focus"] = _focus_json(found.focus)
    if column is None and detail.rows:
        body["sample_rows"] = {
            "columns": [short_name(c.name) for c in found.columns],
            "rows": [[_short(v, detail.text) for v in row] for row in found.sample[: detail.rows]],
        }
    elif column is not None:
        position = shown[0].position
        body["sample_values"] = [
            _short(v, detail.text) for v in _distinct(found.sample, position, SAMPLE_VALUES)
        ]
    return body


def _fact_json(f: Fact, text: int) -> dict[str, Any]:
    shown = {k: _short(v, text) for k, v in f.numbers.items()}
    return {"fact": f.kind, "columns": [short_name(c) for c in f.columns], **shown}


def _focus_json(main: Focus) -> dict[str, Any]:
    """What the table is about, for the model to write about first."""
    return {
        "measures": [short_name(c.name) for c in main.main_measures[:3]],
        "categories": [short_name(c.name) for c in main.categories[:2]],
        "time": short_name(main.time.name) if main.time is not None else None,
    }


def _fit_columns(body: dict[str, Any]) -> dict[str, Any]:
    """Keep the columns that fit the budget, in the table's order, and say how many did not."""
    columns = body.pop("columns")
    body["columns"] = []
    body["omitted_columns"] = len(columns)
    room = BUDGET - len(orjson.dumps(body)) - 8  # the count may grow a digit or two
    kept = []
    for entry in columns:
        size = len(orjson.dumps(entry)) + 1
        if size > room:
            break
        kept.append(entry)
        room -= size
    body["columns"] = kept
    body["omitted_columns"] = len(columns) - len(kept)
    if body["omitted_columns"] == 0:
        del body["omitted_columns"]
    return body


def _shed(body: dict[str, Any]) -> dict[str, Any]:
    """The last resort, for tables whose facts alone outgrow the budget: drop facts, then
    sample values, then columns, until the profile fits."""
    for part in ("facts", "sample_values", "columns"):
        items = body.get(part) or []
        while items and len(orjson.dumps(body)) > BUDGET:
            items.pop()
            if part == "columns":
                body["omitted_columns"] = body.get("omitted_columns", 0) + 1
    return body


def _column(p: Column, sample: list[list[Any]], detail: Detail) -> dict[str, Any]:
    s = p.stats
    count, nulls = int(s.get("count") or 0), int(s.get("nulls") or 0)
    entry: dict[str, Any] = {
        "name": short_name(p.name),
        "type": p.kind,
        "role": p.role,
        "null_share": round_to(nulls / (count + nulls)) if count + nulls else 0,
        "distinct": min(int(s.get("distinct") or 0), count),
    }
    if not s.get("distinct_exact", True):
        entry["distinct_approximate"] = True
    if p.kind in ("integer", "number"):
        quantiles = s.get("quantiles") or {}
        entry["min"], entry["max"] = s.get("min"), s.get("max")
        entry["mean"], entry["stddev"] = round_to(s.get("mean"), 6), round_to(s.get("stddev"), 4)
        for key in ("p05", "p50", "p95"):
            entry[key] = quantiles.get(key)
    elif p.kind in ("date", "datetime"):
        entry["min"], entry["max"] = s.get("min"), s.get("max")
    if p.kind not in ("integer", "number") or p.role == "category":
        entry["top"] = [[_short(t["value"], detail.text), t["count"]] for t in _top(s, detail.top)]
    if p.kind == "string" and detail.examples:
        entry["examples"] = [
            _short(v, detail.text) for v in _distinct(sample, p.position, detail.examples)
        ]
    return entry


# --- Facts ------------------------------------------------------------------------------------


def column_facts(p: Column, rows: int, sample: list[list[Any]]) -> Iterable[Fact]:
    """The facts about one column that its statistics (and the sample) show."""
    s, name = p.stats, (p.name,)
    count, nulls = int(s.get("count") or 0), int(s.get("nulls") or 0)
    if p.role == "empty":
        if rows:
            yield Fact("empty", name, {"rows": rows}, 0.45)
        return
    share = nulls / (count + nulls) if count + nulls else 0.0
    if share >= 0.05:
        yield Fact(
            "missing", name, {"null_share": round_to(share), "nulls": nulls}, 0.3 + share / 2
        )
    if p.role == "constant":
        top = _top(s, 1)
        yield Fact("constant", name, {"value": top[0]["value"] if top else s.get("min")}, 0.35)
    elif p.role == "identifier":
        distinct = min(p.distinct, count)
        numbers = {"distinct": distinct, "count": count, "unique": distinct >= 0.95 * count}
        yield Fact("identifier", name, numbers, 0.2)
    elif p.role == "category":
        yield from _dominant(p, count)
    elif p.role == "measure":
        yield from _skew(p)
        yield from _outliers(p, sample)
    elif p.role == "time":
        yield from _date_range(p)


def _dominant(p: Column, count: int) -> Iterable[Fact]:
    top = _top(p.stats, 2)
    if top and count:
        share = top[0]["count"] / count
        runner_up = top[1]["count"] if len(top) > 1 else 0
        if share > 0.5 and top[0]["count"] > runner_up:
            numbers = {"value": top[0]["value"], "share": round_to(share), "count": top[0]["count"]}
            yield Fact("dominant", (p.name,), numbers, 0.35 + 0.4 * share)


def _skew(p: Column) -> Iterable[Fact]:
    s = p.stats
    q = s.get("quantiles") or {}
    low, median, high = q.get("p05"), q.get("p50"), q.get("p95")
    if low is None or median is None or high is None or high <= low:
        return
    # Kelly's skewness reads quantiles only, so a handful of far outliers (which would swamp a
    # moment-based measure through the stddev) cannot hide how the bulk of the values lean.
    skew = (high + low - 2 * median) / (high - low)
    if abs(skew) >= 0.3:
        numbers = {"skewness": round_to(skew), "mean": round_to(s.get("mean"), 6), "median": median}
        numbers["p05"], numbers["p95"] = low, high
        yield Fact("skew", (p.name,), numbers, min(0.75, 0.3 + abs(skew) / 2))


def _outliers(p: Column, sample: list[list[Any]]) -> Iterable[Fact]:
    s = p.stats
    q = s.get("quantiles") or {}
    q1, q3, low, high = q.get("p25"), q.get("p75"), s.get("min"), s.get("max")
    if q1 is None or q3 is None or low is None or high is None or q3 <= q1:
        return
    iqr = q3 - q1
    fences = (q1 - 3 * iqr, q3 + 3 * iqr)
    if low >= fences[0] and high <= fences[1]:
        return
    values = [row[p.position] for row in sample if row[p.position] is not None]
    beyond = sum(1 for v in values if not fences[0] <= v <= fences[1])
    numbers = {
        "min": low,
        "max": high,
        "low_fence": round_to(fences[0], 6),
        "high_fence": round_to(fences[1], 6),
        "below": low < fences[0],  # decided on the exact fences, not the rounded ones shown
        "above": high > fences[1],
        "sample_share_beyond": round_to(beyond / len(values)) if values else None,
    }
    yield Fact("outliers", (p.name,), numbers, 0.6)


def _date_range(p: Column) -> Iterable[Fact]:
    first, last = p.stats.get("min"), p.stats.get("max")
    start, end = _day(first), _day(last)
    if start is None or end is None:
        return
    numbers = {"first": first, "last": last, "days": (end - start).days + 1}
    numbers["distinct"] = p.distinct
    yield Fact("date_range", (p.name,), numbers, 0.4)


def pair_facts(
    columns: Sequence[Column],
    sample: list[list[Any]],
    derived: set[frozenset[str]],
    skip: set[tuple[str, ...]],
) -> list[Fact]:
    """Facts about pairs of columns, measured in the sample (at most PAIR_COLUMNS of each):
    correlations and associations between columns not ``derived`` one from the other, and a
    measure's means across a category unless the group-bys over all rows said so (``skip``)."""
    out: list[Fact] = []
    measures = [c for c in columns if c.role == "measure"][:PAIR_COLUMNS]
    categories = [c for c in columns if c.role == "category"][:PAIR_COLUMNS]
    for a, b in combinations(measures, 2):
        if frozenset((a.name, b.name)) in derived:
            continue
        r = association.pearson(sample, a.position, b.position)
        if r is not None and abs(r) >= 0.5:
            n = association.pairs_present(sample, a.position, b.position)
            numbers = {"r": round_to(r), "sample": n}
            if same_family(a.name, b.name):
                numbers["same_family"] = True
            weight = abs(r) * (FAMILY_WEIGHT if same_family(a.name, b.name) else 1.0)
            out.append(Fact("correlation", (a.name, b.name), numbers, weight))
    for a, b in combinations(categories, 2):
        if frozenset((a.name, b.name)) in derived:
            continue
        v = association.cramers_v(sample, a.position, b.position)
        if v is not None and v >= 0.5:
            n = association.pairs_present(sample, a.position, b.position)
            numbers = {"cramers_v": round_to(v), "sample": n}
            out.append(Fact("association", (a.name, b.name), numbers, 0.7 * v))
    for c in categories:
        for m in measures:
            if (m.name, c.name) in skip or frozenset((m.name, c.name)) in derived:
                continue
            eta = association.eta(sample, c.position, m.position)
            fact = _differs_by(c, m, eta, sample) if eta is not None and eta >= 0.3 else None
            if fact is not None:
                out.append(fact)
    return out


DERIVED_R = 0.98
DERIVED_ETA = 0.95  # a category that explains 90% of a measure's spread (air time by airport)
FAMILY_WEIGHT = 0.7  # a pair of one family (scheduled vs actual) against a cross-family pair
FAMILY_WORDS = frozenset(
    [
        "sched",
        "scheduled",
        "actual",
        "planned",
        "plan",
        "expected",
        "est",
        "estimated",
        "target",
        "forecast",
        "min",
        "max",
        "minimum",
        "maximum",
        "lo",
        "hi",
        "low",
        "high",
        "start",
        "end",
        "begin",
        "first",
        "last",
        "open",
        "close",
    ]
)
DERIVABLE = ("measure", "clock", "date_part", "category")


def same_family(a: str, b: str) -> bool:
    """Whether two columns hold one quantity in two versions (``dep_time``, ``sched_dep_time``;
    ``temp_max``, ``temp_min``): their names agree once words such as ``sched`` or ``max``
    are left out."""
    stem_a = [w for w in words_of(a) if w not in FAMILY_WORDS]
    stem_b = [w for w in words_of(b) if w not in FAMILY_WORDS]
    return bool(stem_a) and stem_a == stem_b and words_of(a) != words_of(b)


def derived_facts(
    columns: Sequence[Column], sample: list[list[Any]]
) -> tuple[list[Fact], set[frozenset[str]]]:
    """Pairs where one column follows from the other in the sample, each said once as
    ``derived`` (a low weight: worth knowing, not worth a chart), and the set of those pairs:
    numbers with |r| ≥ DERIVED_R, or any two columns where each value of one (repeated, so the
    test means something) always comes with one value of the other, or a category whose
    correlation ratio with a measure is at least DERIVED_ETA."""
    usable = [c for c in columns if c.role in DERIVABLE][: 2 * PAIR_COLUMNS]
    out: list[Fact] = []
    pairs: set[frozenset[str]] = set()
    for a, b in combinations(usable, 2):
        numbers: dict[str, Any] | None = None
        source, target = a, b
        if a.kind in ("integer", "number") and b.kind in ("integer", "number"):
            r = association.pearson(sample, a.position, b.position)
            if r is not None and abs(r) >= DERIVED_R:
                numbers = {"r": round_to(r)}
        if numbers is None and {a.role, b.role} == {"category", "measure"}:
            c, m = (a, b) if a.role == "category" else (b, a)
            eta = association.eta(sample, c.position, m.position)
            if eta is not None and eta >= DERIVED_ETA:
                numbers, source, target = {"eta": round_to(eta)}, c, m
        if numbers is None:
            if _determines(sample, a.position, b.position):
                numbers = {"function": True}
            elif _determines(sample, b.position, a.position):
                numbers, source, target = {"function": True}, b, a
        if numbers is not None:
            pairs.add(frozenset((a.name, b.name)))
            numbers["sample"] = association.pairs_present(sample, a.position, b.position)
            out.append(Fact("derived", (target.name, source.name), numbers, 0.15))
    return out, pairs


def _determines(sample: list[list[Any]], a: int, b: int) -> bool:
    """Whether each value of column ``a`` comes with a single value of ``b`` in the sample,
    ``a`` repeating (at most half as many values as rows) and ``b`` varying."""
    seen: dict[Any, Any] = {}
    n = 0
    for row in sample:
        x, y = row[a], row[b]
        if x is None or y is None:
            continue
        n += 1
        if seen.setdefault(x, y) != y:
            return False
    values = set(seen.values())
    return n >= 30 and len(seen) <= n / 2 and len(values) >= 2


SUPPORT = 5  # sample rows a category's value needs to be named the highest or lowest


def _differs_by(c: Column, m: Column, eta: float, sample: list[list[Any]]) -> Fact | None:
    groups: dict[Any, list[float]] = {}
    for row in sample:
        if row[c.position] is not None and row[m.position] is not None:
            groups.setdefault(row[c.position], []).append(row[m.position])
    means = sorted(
        (math.fsum(v) / len(v), k, len(v)) for k, v in groups.items() if len(v) >= SUPPORT
    )
    if len(means) < 2:
        return None
    (low, low_key, low_n), (high, high_key, high_n) = means[0], means[-1]
    numbers = {
        "eta": round_to(eta),
        "highest": {"value": high_key, "mean": round_to(high, 6), "sample_rows": high_n},
        "lowest": {"value": low_key, "mean": round_to(low, 6), "sample_rows": low_n},
        "sample": sum(len(v) for v in groups.values()),
    }
    return Fact("differs_by", (m.name, c.name), numbers, 0.3 + 0.6 * eta)


# --- Small helpers ----------------------------------------------------------------------------


def _top(stats: dict[str, Any], n: int) -> list[dict[str, Any]]:
    top: list[dict[str, Any]] = (stats.get("top") or [])[:n]
    return top


def _distinct(sample: list[list[Any]], position: int, n: int) -> list[Any]:
    seen: dict[Any, None] = {}
    for row in sample:
        value = row[position]
        if value is not None and value not in seen:
            seen[value] = None
            if len(seen) == n:
                break
    return list(seen)


def _day(text: Any) -> date | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


def short_name(name: str) -> str:
    """A column name as the profile shows it: at most NAME_MAX characters (see ``_cut``)."""
    return _cut(name, NAME_MAX)


def _short(value: Any, limit: int) -> Any:
    """A value for the profile: texts cut (see ``_cut``), anything else as it is."""
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, dict):
        return {k: _short(v, limit) for k, v in value.items()}
    return value


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters and twice that in bytes of JSON, an ellipsis marking a cut:
    a control character takes six bytes in JSON and an emoji four, so a character count alone
    would not hold the budget."""
    if len(text) <= limit and len(orjson.dumps(text)) <= 2 * limit + 2:
        return text
    cut = text[: limit - 1]
    while len(orjson.dumps(cut)) > 2 * limit - 1:  # the ellipsis takes 3 bytes
        cut = cut[: max(0, len(cut) - max(1, len(cut) // 8))]
    return cut + "…"
