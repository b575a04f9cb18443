"""Findings from the statistics alone: each fact of a profile said in words, with its numbers.

This is what ``GET /datasets/ID/insights`` answers without an LLM (``"source": "statistics"``),
so the route is useful out of the box, and it costs no network call::

    found = survey(dataset)
    for finding in findings(found):
        print(finding["title"], "—", finding["detail"])
    # Price has far outliers — The largest price, 1,495, is past the far fence of 1,173 …

A finding is ``{"title", "detail", "columns", "kind"}``: the LLM's shape, and the kind of fact
it says (``trend``, ``seasonality``, ``category_outlier``, ``skew``...). The facts and their
thresholds are described in ``charts.profile`` and ``charts.patterns``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charts.columns import Column
from charts.profile import Fact, Survey, facts_of
from charts.words import number, title, value, words

FINDINGS_MAX = 10


def findings(found: Survey, column: str | None = None) -> list[dict[str, Any]]:
    """At most FINDINGS_MAX findings, best first; for one column, its summary comes first."""
    out = [said(f, found.rows) for f in facts_of(found, column)[:FINDINGS_MAX]]
    if column is not None:
        summary = next(c for c in found.columns if c.name == column)
        return [_summary(summary, found.rows), *out][:FINDINGS_MAX]
    return out or [_shape(found)]


def said(fact: Fact, rows: int = 0) -> dict[str, Any]:
    """One fact as a finding, in words."""
    title_text, detail = SAYINGS[fact.kind](fact, rows)
    return {"title": title_text, "detail": detail, "columns": list(fact.columns), "kind": fact.kind}


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%" if share < 0.995 else f"{share * 100:.2f}%"


def _missing(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    return (
        f"{title(c)} is missing in {_percent(n['null_share'])} of rows",
        f"{number(n['nulls'])} of {number(rows)} rows have no {words(c)}; counts, sums and "
        f"means of {words(c)} cover the other {number(rows - n['nulls'])}.",
    )


def _empty(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    return (f"{title(c)} is always empty", f"All {number(rows)} rows have no {words(c)}.")


def _constant(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    return (
        f"{title(c)} never changes",
        f"Every non-empty {words(c)} is {value(f.numbers['value'])}: it tells rows apart nowhere.",
    )


def _identifier(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    if n["unique"]:
        return (
            f"{title(c)} identifies rows",
            f"{words(c).capitalize()} has about {number(n['distinct'])} distinct values in "
            f"{number(n['count'])} rows: a key to look rows up by, not a measure to add up.",
        )
    return (
        f"{title(c)} is an identifier",
        f"{words(c).capitalize()} has {number(n['distinct'])} distinct values in "
        f"{number(n['count'])} rows, named like a key: values to group or look up by, not a "
        "measure to add up.",
    )


def _dominant(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    return (
        f"{value(n['value'])} dominates {words(c)}",
        f"{value(n['value'])} is {_percent(n['share'])} of the values of {words(c)} "
        f"({number(n['count'])} rows); the other values share the rest.",
    )


def _skew(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    side = "right" if n["skewness"] > 0 else "left"
    if side == "right":
        tail = f"the top 5% lie above {number(n['p95'])}, far past the median"
    else:
        tail = f"the bottom 5% lie below {number(n['p05'])}, far under the median"
    mean = f" and the mean {number(n['mean'])}" if n.get("mean") is not None else ""
    return (
        f"{title(c)} is skewed to the {side}",
        f"The median {words(c)} is {number(n['median'])}{mean}; {tail}. The median is the "
        "typical value.",
    )


def _outliers(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    parts = []
    if n["above"]:
        parts.append(
            f"the largest {words(c)}, {number(n['max'])}, is past the far fence of "
            f"{number(n['high_fence'])}"
        )
    if n["below"]:
        parts.append(f"the smallest, {number(n['min'])}, is below {number(n['low_fence'])}")
    share = n.get("sample_share_beyond")
    found = f" About {_percent(share)} of a uniform sample lies beyond." if share else ""
    return (
        f"{title(c)} has far outliers",
        f"By Tukey's rule (3 interquartile ranges past the quartiles) {' and '.join(parts)}."
        f"{found} Check them before trusting a mean.",
    )


def _date_range(f: Fact, rows: int) -> tuple[str, str]:
    (c,) = f.columns
    n = f.numbers
    return (
        f"{title(c)} runs from {n['first']} to {n['last']}",
        f"{number(n['days'])} days, with {number(n['distinct'])} distinct values of {words(c)}.",
    )


def _correlation(f: Fact, rows: int) -> tuple[str, str]:
    a, b = f.columns
    n = f.numbers
    way = "rise together" if n["r"] > 0 else "move in opposite directions"
    strength = "strongly" if abs(n["r"]) >= 0.7 else "clearly"
    return (
        f"{title(a)} and {words(b)} {way}",
        f"Pearson's r is {n['r']:.2f} in a uniform sample of {number(n['sample'])} rows: "
        f"they are {strength} related (which is not to say one causes the other).",
    )


def _association(f: Fact, rows: int) -> tuple[str, str]:
    a, b = f.columns
    n = f.numbers
    return (
        f"{title(a)} and {words(b)} go together",
        f"Cramér's V is {n['cramers_v']:.2f} in a uniform sample of {number(n['sample'])} rows: "
        f"knowing one says a lot about the other.",
    )


def _differs_by(f: Fact, rows: int) -> tuple[str, str]:
    measure, category = f.columns
    n = f.numbers
    high, low = n["highest"], n["lowest"]
    means = (
        f"the mean {words(measure)} is {number(high['mean'])} for {value(high['value'])} and "
        f"{number(low['mean'])} for {value(low['value'])}"
    )
    if "eta" in n:
        return (
            f"{title(measure)} differs by {words(category)}",
            f"In a uniform sample of {number(n['sample'])} rows {means}; {words(category)} "
            f"explains a share of its spread (correlation ratio {n['eta']:.2f}).",
        )
    return (
        f"{title(measure)} differs by {words(category)}",
        f"{_over(n)} {means} ({number(high['rows'])} and {number(low['rows'])} rows): "
        f"{n['gap_sd']:.2f} standard deviations apart, across {n['groups']} values of "
        f"{words(category)}.",
    )


def _over(n: dict[str, Any]) -> str:
    """Where a fact of the group-bys was measured: every row, or the sample when the
    group-bys ran out of time."""
    if n.get("sampled"):
        return f"In a uniform sample of {number(n['sampled'])} rows"
    return "Over all rows"


def _category_outlier(f: Fact, rows: int) -> tuple[str, str]:
    measure, category = f.columns
    n = f.numbers
    side = n["stands_out"]
    out = n[side]
    way = "highest" if side == "highest" else "lowest"
    return (
        f"{value(out['value'])} stands out on {words(measure)}",
        f"{_over(n)} the mean {words(measure)} for {value(out['value'])} is "
        f"{number(out['mean'])} ({number(out['rows'])} rows), the {way} of "
        f"{n['groups']} values of {words(category)}; the next is {number(n['next'])}. The "
        f"{way} and the other end are {n['gap_sd']:.2f} standard deviations apart.",
    )


def _seasonality(f: Fact, rows: int) -> tuple[str, str]:
    measure = f.columns[0]
    n = f.numbers
    high, low = n["highest"], n["lowest"]
    by = {"weekday": "day of the week", "month": "month"}.get(n["by"], words(str(n["by"])))
    named = n["by"] in ("month", "weekday")  # month and weekday values are words already
    peak, trough = (str(x["value"]) if named else value(x["value"]) for x in (high, low))
    return (
        f"{title(measure)} peaks in {peak}" if named else f"{title(measure)} varies with {by}",
        f"By {by}, {_over(n).lower()}, the mean {words(measure)} is highest for {peak} "
        f"({number(high['mean'])}) and lowest for {trough} ({number(low['mean'])}): "
        f"{n['gap_sd']:.2f} standard deviations apart.",
    )


def _trend(f: Fact, rows: int) -> tuple[str, str]:
    n = f.numbers
    test = f"Mann–Kendall z = {n['z']:.2f}, τ = {n['tau']:.2f}"
    if "value" in n:  # a category's share moving
        category, time = f.columns[-2], f.columns[-1]
        of = "rows" if n["of"] == "rows" else f"total {words(n['of'])}"
        way = "grows" if n["end_share"] > n["start_share"] else "shrinks"
        return (
            f"The share of {value(n['value'])} in {of} {way}",
            f"Its share of {of} goes from {_percent(n['start_share'])} ({n['first']}) to "
            f"{_percent(n['end_share'])} ({n['last']}) over {words(time)} ({test}); "
            f"{words(category)} is what is shared.",
        )
    measure, time = f.columns
    way = "rises" if n["tau"] > 0 else "falls"
    return (
        f"{title(measure)} {way} over {words(time)}",
        f"The mean {words(measure)} per {n['unit']} goes from {number(n['start_mean'])} "
        f"({n['first']}) to {number(n['end_mean'])} ({n['last']}); the typical change over the "
        f"span is {number(n['change'])} (Sen's slope; {test}, {n['buckets']} points; "
        f"{_over(n).lower()}).",
    )


def _change_point(f: Fact, rows: int) -> tuple[str, str]:
    measure, time = f.columns
    n = f.numbers
    way = "jumps" if n["after"] > n["before"] else "drops"
    return (
        f"{title(measure)} {way} around {n['at']}",
        f"Before {n['at']} the mean {words(measure)} is about {number(n['before'])}; from "
        f"then on about {number(n['after'])}: two levels tell the series better than a line.",
    )


def _time_outlier(f: Fact, rows: int) -> tuple[str, str]:
    measure, time = f.columns
    n = f.numbers
    return (
        f"{title(measure)} is unusual at {n['at']}",
        f"The mean {words(measure)} at {n['at']} is {number(n['mean'])}, where its neighbours "
        f"suggest about {number(n['expected'])} ({n['robust_z']:.1f} robust deviations off).",
    )


def _steady_share(f: Fact, rows: int) -> tuple[str, str]:
    category, time = f.columns
    n = f.numbers
    of = "rows" if n["of"] == "rows" else f"total {words(n['of'])}"
    return (
        f"{value(n['value'])} keeps a steady share of {of}",
        f"Over {words(time)} its share stays between {_percent(n['low'])} and "
        f"{_percent(n['high'])} (mean {_percent(n['share'])}).",
    )


def _derived(f: Fact, rows: int) -> tuple[str, str]:
    target, source = f.columns
    n = f.numbers
    how = (
        f"each {words(source)} comes with one {words(target)}"
        if n.get("function")
        else f"r = {n['r']:.3f}"
    )
    return (
        f"{title(target)} is derived from {words(source)}",
        f"In a sample of {number(n['sample'])} rows {how}: one says what the other does, so "
        "they are not charted or compared against each other.",
    )


SAYINGS: dict[str, Callable[[Fact, int], tuple[str, str]]] = {
    "missing": _missing,
    "empty": _empty,
    "constant": _constant,
    "identifier": _identifier,
    "dominant": _dominant,
    "skew": _skew,
    "outliers": _outliers,
    "date_range": _date_range,
    "correlation": _correlation,
    "association": _association,
    "differs_by": _differs_by,
    "category_outlier": _category_outlier,
    "seasonality": _seasonality,
    "trend": _trend,
    "change_point": _change_point,
    "time_outlier": _time_outlier,
    "steady_share": _steady_share,
    "derived": _derived,
}


def _summary(p: Column, rows: int) -> dict[str, Any]:
    """One column in a sentence: how many values, and their range or most common ones."""
    s, c = p.stats, p.name
    count = int(s.get("count") or 0)
    head = f"{number(count)} of {number(rows)} rows have a value for {words(c)}"
    if p.kind in ("integer", "number") and count:
        q = s.get("quantiles") or {}
        detail = (
            f"{head}, from {number(s.get('min'))} to {number(s.get('max'))}: median "
            f"{number(q.get('p50'))}, mean {number(s.get('mean'))}, 90% between "
            f"{number(q.get('p05'))} and {number(q.get('p95'))}."
        )
    elif p.kind in ("date", "datetime") and count:
        detail = f"{head}, from {s.get('min')} to {s.get('max')}."
    elif count:
        top = s.get("top") or []
        common = ", ".join(f"{value(t['value'])} ({number(t['count'])})" for t in top[:3])
        distinct = min(int(s.get("distinct") or 0), count)
        detail = f"{head}, {number(distinct)} distinct; the most common: {common}."
    else:
        detail = f"No row has a value for {words(c)}."
    kind = {"number": "decimal", "string": "text"}.get(p.kind, p.kind)
    role = p.role.replace("_", " ")
    head = f"{title(c)}: {kind}, {role}"
    return {"title": head, "detail": detail, "columns": [c], "kind": "summary"}


ROLE_NOUNS = {  # a column's role (charts.columns) as a noun: singular, plural
    "measure": ("measure", "measures"),
    "category": ("category", "categories"),
    "time": ("date column", "date columns"),
    "identifier": ("identifier", "identifiers"),
    "clock": ("clock time", "clock times"),
    "date_part": ("date part", "date parts"),
    "text": ("text column", "text columns"),
    "constant": ("constant column", "constant columns"),
    "empty": ("empty column", "empty columns"),
}


def _nouns(role: str) -> tuple[str, str]:
    return ROLE_NOUNS.get(role, (f"{role} column", f"{role} columns"))


def _counted(n: int, nouns: tuple[str, str]) -> str:
    return f"{n} {nouns[0] if n == 1 else nouns[1]}"


def _shape(found: Survey) -> dict[str, Any]:
    """The finding when no fact stands out: what the table holds."""
    roles: dict[str, int] = {}
    for c in found.columns:
        roles[c.role] = roles.get(c.role, 0) + 1
    held = ", ".join(_counted(n, _nouns(role)) for role, n in sorted(roles.items()))
    return {
        "title": f"{number(found.rows)} rows and {len(found.columns)} columns, nothing unusual",
        "detail": f"The columns are {held}; none is skewed, mostly missing or dominated by one "
        "value, and no two are strongly related in the sample.",
        "columns": [c.name for c in found.columns],
        "kind": "shape",
    }
