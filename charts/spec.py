"""One chart as a complete Vega-Lite v6 specification, its data inline and computed here.

Example::

    with open_dataset(store, jobs, "ds_3f9a2c41b7d0") as dataset:
        query = filter.parse({"origin": "JFK"}, dataset.meta["columns"])
        spec = chart(dataset, query, "bar", "carrier", "distance", None, "sum", None,
                     max_groups=10_000)
    # {"$schema": ".../vega-lite/v6.json", "data": {"values": [{"carrier": "UA",
    #  "count": 3, "sum_distance": 4201.5}, ...]}, "mark": ..., "encoding": ...}

Parameters are checked first, reading no rows (``charts.request``, with the table of what each
mark takes); then the data is computed (``charts.data``) and drawn (``charts.encoding``).

The inline data is bounded whatever the dataset's size: a dimension keeps its most frequent
values (BAR_CAP, ARC_CAP, RECT_CAP, COLOR_CAP, …) and the rest are folded into
"Other (N more)", or dropped when the aggregate (a mean) cannot be folded; numeric dimensions
with many values are binned, and dates bucketed into the finest time unit that fits the cap;
point and boxplot draw a uniform sample of at most 1,000 rows. Whatever the sources say, a spec
is never more than MAX_SPEC_BYTES: past it, data values are cut and the description says so.
The description says where the data came from (``charts.data``) and what was left out;
``usermeta.rillet`` says the same for programs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from charts import data, encoding
from charts.data import Key, Measure
from charts.encoding import (
    LABEL_MAX,
    NUMERIC,
    TEMPORAL,
    Column,
    Dimension,
    alias,
    capitalized,
    dim_channel,
    field_of,
    labelled,
    measure_title,
    ref,
    short,
    tooltip,
    utc,
    value_channel,
    words,
)
from charts.request import (
    AGGREGATED,
    BOX_CAP,
    COLOR_CAP,
    DEFAULT_BINS,
    Request,
    check,
)
from streaming.filter import Selection
from streaming.filter import parse as parse_filters
from streaming.query import RUNNER, Runner, Values
from streaming.read import Dataset
from streaming.settings import Settings

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
BAR_CAP = 50  # bars
ARC_CAP = 20  # slices
RECT_CAP = 30  # rows and columns of a heatmap
LINE_POINTS = 200  # points of one line (a year of dates draws by week)
LINE_TOTAL = 800  # points of all lines
MAX_SPEC_BYTES = 100_000
OPERATOR_TEXT = {
    "exact": "=",
    "not": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "contains": "contains",
    "icontains": "contains (any case)",
    "startswith": "starts with",
    "endswith": "ends with",
    "in": "in",
    "notin": "not in",
}


def chart(
    dataset: Dataset,
    query: Selection,
    mark: str | None,
    x: str | None,
    y: str | None,
    color: str | None,
    aggregate: str | None,
    bins: str | int | None,
    *,
    max_groups: int,
    title: str | None = None,
) -> dict[str, Any]:
    """A Vega-Lite v6 spec of one chart of the rows that match ``query``; BadRequest names
    any mistake in the parameters before any row is read."""
    context = Context(dataset, query, max_groups)
    request = check(context.columns, mark, x, y, color, aggregate, bins)
    spec = BUILDERS[request.mark](context, request)
    return finish(context, request, spec, title)


PARAMETERS = ("mark", "x", "y", "color", "aggregate", "bins")


def parameters(values: Any) -> list[Any]:
    """A request's chart parameters, in the order ``chart`` and ``validate`` take them."""
    return [values.get(name) for name in PARAMETERS]


@dataclass(frozen=True)
class ChartQuery:
    """One chart of the matching rows, as the query layer (``streaming.query``) shapes a read:
    ``parse`` checks everything before a row is read, ``run`` draws it."""

    selection: Selection
    asked: tuple[Any, ...]  # mark, x, y, color, aggregate, bins
    max_groups: int
    scans = True

    @classmethod
    def parse(cls, dataset: Dataset, values: Values, settings: Settings) -> ChartQuery:
        selection = parse_filters(values, dataset.meta["columns"])
        asked = tuple(parameters(values))
        validate(dataset, selection, *asked)
        return cls(selection, asked, settings.groupby_max)

    def run(self, dataset: Dataset, runner: Runner = RUNNER) -> dict[str, Any]:
        return chart(dataset, self.selection, *self.asked, max_groups=self.max_groups)

    result = run


def validate(
    dataset: Dataset,
    query: Selection,
    mark: str | None,
    x: str | None,
    y: str | None,
    color: str | None,
    aggregate: str | None,
    bins: str | int | None,
) -> None:
    """BadRequest for any mistake in ``chart``'s parameters, reading no rows (so a route can
    check them before answering 304 Not Modified)."""
    check(Context(dataset, query, 0).columns, mark, x, y, color, aggregate, bins)


class Context:
    """What building one chart needs: the dataset, the query, statistics and notes."""

    def __init__(self, dataset: Dataset, query: Selection, max_groups: int) -> None:
        self.dataset = dataset
        self.query = query
        self.max_groups = max_groups
        self.stats: dict[str, Any] = orjson.loads(dataset.stats_bytes())
        self.columns = {
            c["name"]: Column(c["name"], i, c["type"], self.stats.get(c["name"]) or {})
            for i, c in enumerate(dataset.meta["columns"])
        }
        self.notes: list[str] = []
        self.meta: dict[str, Any] = {}
        self._extents: dict[int, tuple[Any, Any]] = {}

    def extent(self, column: Column) -> tuple[Any, Any]:
        """The lowest and highest value among the matching rows: the statistics' when nothing
        filters the rows, else one scan (remembered)."""
        if not self.query.active:
            return column.stats.get("min"), column.stats.get("max")
        if column.position not in self._extents:
            key = Key(column.name, column.position, column.kind)
            self._extents[column.position] = data.extent(self.dataset, self.query, key)
        return self._extents[column.position]


# --- Dimensions: what each grouping column becomes --------------------------------------------


def dimension(
    context: Context, column: Column, cap: int, bins: int | None, default_bins: int, field: str
) -> Dimension:
    """A column as it is, binned when numeric with many values (or ``bins``), bucketed by the
    finest time unit that fits ``cap`` when a date."""
    plain = Key(field, column.position, column.kind)
    if column.kind in NUMERIC:
        if bins is None and column.distinct <= cap:
            return Dimension(column, plain, cap)
        low, high = context.extent(column)
        if low is None:
            return Dimension(column, plain, cap)
        start, step, decimals = data.bins(low, high, bins or default_bins, column.kind == "integer")
        return Dimension(
            column, Key(field, column.position, column.kind, None, start, step, decimals), cap
        )
    if column.kind in TEMPORAL:
        if column.distinct <= cap:  # as they are: a date's day is the date
            unit = "day" if column.kind == "date" else None
            return Dimension(column, Key(field, column.position, column.kind, unit), cap)
        low, high = context.extent(column)
        if low is None:
            return Dimension(column, plain, cap)
        unit = data.time_unit(low, high, column.kind, cap)
        return Dimension(column, Key(field, column.position, column.kind, unit), cap)
    return Dimension(column, plain, cap)


def fields(columns: Sequence[Column], measure: Measure) -> list[str]:
    """Data field names for grouping columns: their names, unless a name is long or clashes
    with the aggregates' fields (``count``, ``sum_x``) or a bin's end (``x_end``)."""
    taken = {"count", measure.name}
    out: list[str] = []
    for column in columns:
        name = alias(column.name, column.position)
        while name in taken or name + "_end" in taken:
            name += " (value)"
        taken.update((name, name + "_end"))
        out.append(name)
    return out


# --- Aggregated marks: bar, line, area, arc, rect ----------------------------------------------


def aggregated(context: Context, request: Request) -> dict[str, Any]:
    mark, measure = request.mark, request.measure
    assert measure is not None and request.x is not None
    planned: list[tuple[Column, int]] = [(request.x, _x_cap(request))]
    if mark == "rect":
        assert request.y is not None
        planned = [(request.x, RECT_CAP), (request.y, RECT_CAP)]
    elif request.color is not None:
        planned.append((request.color, COLOR_CAP))
    names = fields([c for c, _ in planned], measure)
    default = DEFAULT_BINS[mark]
    dims = [
        dimension(
            context, column, cap, request.bins if i == 0 or mark == "rect" else None, default, name
        )
        for i, ((column, cap), name) in enumerate(zip(planned, names))
    ]
    rows = _grouped(context, dims, measure)
    if mark == "arc":
        rows = _positive(context, rows, measure)
    return {"data": {"values": rows}, **encoding.ENCODERS[mark](rows, dims, measure)}


def _x_cap(request: Request) -> int:
    if request.mark == "arc":
        return ARC_CAP
    if request.mark == "bar":
        return BAR_CAP
    series = min(request.color.distinct, COLOR_CAP) if request.color else 1
    return max(20, min(LINE_POINTS, LINE_TOTAL // max(series, 1)))


def _grouped(context: Context, dims: list[Dimension], measure: Measure) -> list[dict[str, Any]]:
    """The matching rows aggregated by the dimensions' keys, shaped for the chart."""
    keys = [d.key for d in dims]
    stats, cap = context.stats, context.max_groups
    groups = data.aggregate(context.dataset, context.query, keys, measure, stats, cap)
    return _shaped(context, groups, dims, measure)


def _shaped(
    context: Context, groups: data.Groups, dims: list[Dimension], measure: Measure
) -> list[dict[str, Any]]:
    """The groups as chart data: nulls labelled or left out, long tails folded, dates read as
    UTC, bins given their end."""
    context.meta.update(source=groups.source, truncated=groups.truncated)
    if groups.truncated:
        context.notes.append(
            f"The group-by held its first {context.max_groups:,} groups; rows of later groups "
            "are not counted."
        )
    rows = groups.rows
    context.meta["rows"] = sum(r["count"] for r in rows)
    for dim in dims:
        if dim.key.binned:
            bins = {"start": dim.key.start, "step": dim.key.step}
            context.meta.setdefault("bins", {})[dim.column.name] = bins
        elif not dim.key.exact:
            context.meta.setdefault("time_units", {})[dim.column.name] = dim.key.unit
        rows = _nulls(context, rows, dim)
        if dim.nominal:
            rows, _, folded, label = data.fold(rows, dim.field, dim.cap, measure)
            rows = labelled(rows, dim.field)
            if folded:
                context.meta.setdefault("folded", {})[dim.column.name] = folded
                what = (
                    f"folded into {label!r}"
                    if label
                    else f"left out ({measure.function} cannot be merged)"
                )
                context.notes.append(
                    f"Only the {dim.cap if not label else dim.cap - 1} most frequent values of "
                    f"{short(dim.column.name)!r} are shown; {folded:,} others are {what}."
                )
        elif dim.column.kind in TEMPORAL:
            rows = [{**r, dim.field: utc(r[dim.field])} for r in rows]
        elif dim.key.binned:
            key = dim.key
            for r in rows:
                r[dim.end] = key.edge(round((r[dim.field] - key.start) / key.step) + 1)
    return rows


def _nulls(context: Context, rows: list[dict[str, Any]], dim: Dimension) -> list[dict[str, Any]]:
    if dim.nominal:
        return rows  # a category of its own, labelled NULL_LABEL
    left = sum(r["count"] for r in rows if r[dim.field] is None)
    if left:
        context.notes.append(f"{left:,} rows with no {short(dim.column.name)!r} are left out.")
    return [r for r in rows if r[dim.field] is not None]


def _positive(
    context: Context, rows: list[dict[str, Any]], measure: Measure
) -> list[dict[str, Any]]:
    kept = [r for r in rows if (r.get(measure.name) or 0) > 0]
    if len(kept) < len(rows):
        context.notes.append(
            f"{len(rows) - len(kept)} slices with a {measure.function} of zero, none or less "
            "are left out: a pie shows parts of a positive whole."
        )
    return kept


# --- Histogram -------------------------------------------------------------------------------


def histogram(context: Context, request: Request) -> dict[str, Any]:
    x, color = request.x, request.color
    assert x is not None
    count = Measure("count")
    names = fields([c for c in (x, color) if c is not None], count)
    stored = data.histogram(context.stats, x.name)
    default = request.bins in (None, DEFAULT_BINS["histogram"])
    if x.kind in NUMERIC and default and color is None and not context.query.active and stored:
        field = names[0]
        rows = [{field: b["start"], field + "_end": b["end"], "count": b["count"]} for b in stored]
        context.meta.update(source="statistics", rows=sum(b["count"] for b in stored))
        bound = (x.stats.get("error_bounds") or {}).get("histogram")
        exact = "exact" if bound is None else f"estimated, normalized rank error {bound}"
        context.notes.append(f"Binned from the statistics computed at sync ({exact}).")
        first = stored[0]
        step = first["end"] - first["start"] or 1.0
        key = Key(field, x.position, x.kind, None, first["start"], step)
        dims = [Dimension(x, key, 0, capitalized(x.name))]
    else:
        bins = request.bins or DEFAULT_BINS["histogram"]
        dims = [dimension(context, x, bins, bins if x.kind in NUMERIC else None, bins, names[0])]
        if color is not None:
            dims.append(dimension(context, color, COLOR_CAP, None, COLOR_CAP, names[1]))
        rows = _grouped(context, dims, count)
    channels: dict[str, Any] = {
        "x": dim_channel(rows, dims[0], count, discrete=False, bands=True),
        "y": value_channel(count),
        "tooltip": tooltip(dims, count),
    }
    if x.kind in NUMERIC:
        channels["x2"] = {"field": ref(dims[0].end)}
    if len(dims) > 1:
        channels["color"] = dim_channel(rows, dims[1], count, discrete=True)
    return {
        "data": {"values": rows},
        "mark": {"type": "bar"},
        "encoding": channels,
        "width": 480,
        "height": 300,
    }


# --- Sampled marks: point, boxplot -----------------------------------------------------------


def sampled(context: Context, request: Request) -> dict[str, Any]:
    rows, matched = data.sample(context.dataset, context.query)
    used = [c for c in (request.x, request.y, request.color) if c is not None]
    needed = [c for c in (request.x, request.y) if c is not None and c.kind in NUMERIC | TEMPORAL]
    drawn = len(rows)
    rows = data.present(rows, [c.position for c in needed])
    values = [{field_of(c): _shown(c, row[c.position]) for c in used} for row in rows]
    context.meta.update(source="sample", rows=matched, sampled=drawn)
    matching = " that match" if context.query.active else ""
    if matched <= data.SAMPLE_ROWS:
        note = f"Drawn from all {matched:,} rows{matching}."
    else:
        kept = "kept at sync" if not context.query.active else "drawn in a scan"
        note = (
            f"Drawn from a uniform random sample ({kept}) of {drawn:,} of the {matched:,} "
            f"rows{matching}, not from every row."
        )
    if drawn > len(rows):
        names = " or ".join(repr(short(c.name)) for c in needed)
        note += f" {drawn - len(rows):,} of those rows have no {names} and are left out."
    context.notes.append(note)
    for column, cap in (
        (request.x, BOX_CAP if request.mark == "boxplot" else BAR_CAP),
        (request.color, COLOR_CAP),
    ):
        if column is not None and column.kind in ("string", "boolean", "null"):
            _top_only(context, values, column, cap)
            values = labelled(values, field_of(column))
    if request.mark == "point":
        assert request.x is not None and request.y is not None
        drawn_as = encoding.point(request.x, request.y, request.color)
    else:
        assert request.y is not None
        drawn_as = encoding.boxplot(request.x, request.y)
    return {"data": {"values": values}, **drawn_as}


def _top_only(context: Context, values: list[dict[str, Any]], column: Column, cap: int) -> None:
    """Relabel a sampled category outside its ``cap`` most frequent values as "Other"."""
    field = field_of(column)
    counts: dict[Any, int] = {}
    for v in values:
        counts[v[field]] = counts.get(v[field], 0) + 1
    if len(counts) <= cap:
        return
    kept = set(sorted(counts, key=lambda k: -counts[k])[: cap - 1])
    label = data.other_label(len(counts) - cap + 1, {str(k) for k in counts})
    for v in values:
        if v[field] not in kept:
            v[field] = label
    context.notes.append(
        f"Only the {cap - 1} most frequent values of {short(column.name)!r} in the sample "
        "are shown; "
        f"{len(counts) - cap + 1:,} others are shown as {label!r}."
    )


def _shown(column: Column, value: Any) -> Any:
    return utc(value) if column.kind in TEMPORAL else value


# --- The whole spec ----------------------------------------------------------------------------


def finish(
    context: Context, request: Request, body: dict[str, Any], title: str | None
) -> dict[str, Any]:
    """Title, description and metadata around a chart's data and encoding, within the size cap."""
    heading = title or _heading(request)
    subtitle = _filters(context.query)
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": {"text": heading, "subtitle": subtitle} if subtitle else heading,
        "description": "",
        **body,
    }
    context.meta.update(
        dataset=context.dataset.id, mark=request.mark, points=len(body["data"]["values"])
    )
    _describe(context, request, spec, heading)
    encoded = orjson.dumps(spec)
    notes = list(context.notes)
    while len(encoded) > MAX_SPEC_BYTES:  # the last resort: categories and samples are capped
        values = spec["data"]["values"]
        keep = max(0, int(len(values) * MAX_SPEC_BYTES / len(encoded) * 0.9) - 1)
        spec["data"]["values"] = values[:keep]
        context.meta["cut"] = keep
        context.notes = [*notes, f"Cut to its first {keep:,} data values to stay under 100 KB."]
        _describe(context, request, spec, heading)
        encoded = orjson.dumps(spec)
    return spec


def _describe(context: Context, request: Request, spec: dict[str, Any], heading: str) -> None:
    source = context.meta.get("source")
    rows = context.meta.get("rows") or 0
    over = f"the {rows:,} rows that match" if context.query.active else f"all {rows:,} rows"
    lead = {
        "statistics": "Computed from the statistics kept at sync, without reading the rows.",
        "groupby": f"Aggregated on the server by the group-by engine over {over}.",
        "buckets": f"Aggregated on the server over {over}.",
    }.get(source or "", "")
    sentences = [f"{KIND[request.mark]}: {heading}.", lead, *context.notes]
    spec["description"] = " ".join(s for s in sentences if s)
    spec["usermeta"] = {"rillet": dict(context.meta)}


KIND = {
    "bar": "Bar chart",
    "line": "Line chart",
    "area": "Area chart",
    "arc": "Pie chart",
    "rect": "Heatmap",
    "histogram": "Histogram",
    "point": "Scatter plot",
    "boxplot": "Box plot",
}


def _heading(request: Request) -> str:
    x, y, color = request.x, request.y, request.color
    if request.mark == "histogram":
        assert x is not None
        return f"Distribution of {words(x.name)}" + (f" by {words(color.name)}" if color else "")
    if request.mark == "point":
        assert x is not None and y is not None
        return f"{capitalized(y.name)} against {words(x.name)}"
    if request.mark == "boxplot":
        assert y is not None
        return f"{capitalized(y.name)} by {words(x.name)}" if x else f"Spread of {words(y.name)}"
    assert request.measure is not None and x is not None
    groups = [x, y] if request.mark == "rect" else [x, color]
    named = " and ".join(words(c.name) for c in groups if c is not None)
    return f"{measure_title(request.measure)} by {named}"


def _filters(query: Selection) -> str:
    """The filters in words: ``Where carrier = UA and dep delay > 60``."""
    parts = []
    for f in query.filters:
        if f.op in ("isnull", "notnull"):
            null = (f.op == "isnull") == (f.raw.strip().lower() in ("1", "true", "yes"))
            parts.append(f"{words(f.column)} is {'' if null else 'not '}null")
        else:
            parts.append(f"{words(f.column)} {OPERATOR_TEXT[f.op]} {f.raw[:LABEL_MAX]}")
    if query.search:
        parts.append(f"some text contains {query.search[:LABEL_MAX]!r}")
    return ("Where " + " and ".join(parts)) if parts else ""


BUILDERS = {
    **{mark: aggregated for mark in AGGREGATED},
    "histogram": histogram,
    "point": sampled,
    "boxplot": sampled,
}
