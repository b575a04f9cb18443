"""The Vega-Lite encodings: how each mark draws its data, and the words on its axes.

``charts.spec`` computes a chart's data and hands each mark's encoder the rows and their
dimensions; the encoders choose channels and types (nominal categories in an explicit order
with "Other" last, binned numbers with their ends, dates as UTC time with their unit), titles
and tooltips. Nothing here reads a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charts import data
from charts.data import Key, Measure

NUMERIC = frozenset(["integer", "number"])
TEMPORAL = frozenset(["date", "datetime"])
LABEL_MAX = 80  # characters of a category kept in the data
TITLE_MAX = 48  # characters of a column's name in titles
NULL_LABEL = "(null)"
MEASURE_TITLES = {"sum": "Total", "mean": "Mean", "min": "Minimum", "max": "Maximum"}


@dataclass(frozen=True)
class Column:
    name: str
    position: int
    kind: str
    stats: dict[str, Any]

    @property
    def distinct(self) -> int:
        return int(self.stats.get("distinct") or 0)


@dataclass(frozen=True)
class Dimension:
    """A grouping column of an aggregated chart: its key, data field and axis title."""

    column: Column
    key: Key
    cap: int
    label: str | None = None  # the title, when the key's own would mislead

    @property
    def field(self) -> str:
        return self.key.column

    @property
    def nominal(self) -> bool:
        return self.column.kind not in NUMERIC | TEMPORAL

    @property
    def end(self) -> str:
        return self.field + "_end"

    @property
    def title(self) -> str:
        if self.label is not None:
            return self.label
        title = capitalized(self.column.name)
        if self.key.unit and not self.key.exact:
            title += f" ({self.key.unit})"
        if self.key.binned:
            title += f" (bins of {self.key.step:g})"
        return title


def alias(name: str, position: int) -> str:
    """A column's name as a data field: itself, or cut short (it is repeated in every value)."""
    return name if len(name) <= 64 else f"{name[:60]}… {position}"


def bar(rows: list[dict[str, Any]], dims: list[Dimension], measure: Measure) -> dict[str, Any]:
    x, color = dims[0], dims[1] if len(dims) > 1 else None
    value = value_channel(measure)
    across = x.nominal and (
        len({r[x.field] for r in rows}) > 10 or max((len(r[x.field]) for r in rows), default=0) > 12
    )
    category = dim_channel(rows, x, measure, discrete=x.nominal or not x.key.unit, bands=True)
    if not across and x.nominal:
        category["axis"] = {"labelAngle": 0}
    encoding: dict[str, Any] = (
        {"x": value, "y": category} if across else {"x": category, "y": value}
    )
    if x.key.binned:
        encoding["x2"] = {"field": ref(x.end)}
    if color is not None:
        encoding["color"] = dim_channel(rows, color, measure, discrete=True)
        if measure.function not in ("count", "sum"):  # side by side: maxima do not stack
            encoding["yOffset" if across else "xOffset"] = {**encoding["color"], "title": None}
    encoding["tooltip"] = tooltip(dims, measure)
    size = {"height": {"step": 18}, "width": 480} if across else {"width": _width(rows, x)}
    return {"mark": {"type": "bar"}, "encoding": encoding, **size}


def line(
    rows: list[dict[str, Any]], dims: list[Dimension], measure: Measure, area: bool = False
) -> dict[str, Any]:
    x, color = dims[0], dims[1] if len(dims) > 1 else None
    encoding: dict[str, Any] = {
        "x": dim_channel(rows, x, measure, discrete=False),
        "y": value_channel(measure),
    }
    if color is not None:
        encoding["color"] = dim_channel(rows, color, measure, discrete=True)
        if area and measure.function not in ("count", "sum"):
            encoding["y"]["stack"] = None
    encoding["tooltip"] = tooltip(dims, measure)
    points = len(rows) // (len({r[color.field] for r in rows}) if color else 1) <= 60
    mark: dict[str, Any] = (
        {"type": "area", "line": True, "opacity": 0.7}
        if area
        else {"type": "line", "point": points}
    )
    return {"mark": mark, "encoding": encoding, "width": 480, "height": 300}


def area(rows: list[dict[str, Any]], dims: list[Dimension], measure: Measure) -> dict[str, Any]:
    return line(rows, dims, measure, area=True)


def arc(rows: list[dict[str, Any]], dims: list[Dimension], measure: Measure) -> dict[str, Any]:
    x = dims[0]
    slices = dim_channel(rows, x, measure, discrete=True)
    encoding = {
        "theta": {**value_channel(measure), "stack": True},
        "color": slices,
        "order": {"field": ref(measure.name), "sort": "descending"},
        "tooltip": tooltip(dims, measure),
    }
    return {
        "mark": {"type": "arc", "innerRadius": 40},
        "encoding": encoding,
        "width": 300,
        "height": 300,
    }


def rect(rows: list[dict[str, Any]], dims: list[Dimension], measure: Measure) -> dict[str, Any]:
    x, y = dims
    encoding: dict[str, Any] = {
        "x": dim_channel(rows, x, measure, discrete=True),
        "y": dim_channel(rows, y, measure, discrete=True),
        "color": {**value_channel(measure), "scale": {"scheme": "blues"}},
        "tooltip": tooltip(dims, measure),
    }
    if x.key.binned:
        encoding["x2"] = {"field": ref(x.end)}
    if y.key.binned:
        encoding["y2"] = {"field": ref(y.end)}
    size: dict[str, Any] = {}
    if x.key.binned:
        size["width"] = 480
    else:
        size["width"] = {"step": 36}
        longest = max((len(str(r[x.field])) for r in rows), default=0)
        encoding["x"]["axis"] = {"labelAngle": 0 if longest <= 5 else -45}
    size["height"] = 300 if y.key.binned else {"step": 24}
    return {"mark": {"type": "rect"}, "encoding": encoding, **size}


def point(x: Column, y: Column, color: Column | None) -> dict[str, Any]:
    encoding: dict[str, Any] = {"x": raw_channel(x), "y": raw_channel(y)}
    if color is not None:
        encoding["color"] = raw_channel(color)
    encoding["tooltip"] = [
        {k: v for k, v in raw_channel(c).items() if k != "scale"} for c in (x, y, color) if c
    ]
    mark = {"type": "point", "filled": True, "opacity": 0.6}
    return {"mark": mark, "encoding": encoding, "width": 480, "height": 300}


def boxplot(x: Column | None, y: Column) -> dict[str, Any]:
    encoding: dict[str, Any] = {"y": raw_channel(y)}
    if x is not None:
        encoding["x"] = raw_channel(x, discrete=True)
    return {"mark": {"type": "boxplot", "extent": 1.5}, "encoding": encoding, "height": 300}


def field_of(column: Column) -> str:
    return alias(column.name, column.position)


def dim_channel(
    rows: list[dict[str, Any]],
    dim: Dimension,
    measure: Measure,
    discrete: bool,
    bands: bool = False,
) -> dict[str, Any]:
    """The encoding of a grouping column: nominal in an explicit order (most first, "Other"
    last), binned, time (``bands``: bars as wide as their time unit), or ordered numbers."""
    channel: dict[str, Any] = {"field": ref(dim.field), "title": dim.title}
    kind = dim.column.kind
    if dim.nominal:
        channel.update(type="nominal", sort=_order(rows, dim, measure))
    elif dim.key.binned:
        channel.update(type="quantitative", bin={"binned": True})
    elif kind in TEMPORAL:
        channel["type"] = "ordinal" if discrete else "temporal"
        unit = dim.key.unit or ("day" if kind == "date" else None)
        if unit is not None and (discrete or bands):
            # The data is already bucketed: the unit gives bars their width and labels their
            # format. Vega-Lite writes weeks as "W05"; a week's Sunday reads better.
            channel["timeUnit"] = data.VEGA_UNITS["day" if unit == "week" and discrete else unit]
            if unit == "week" and not discrete:
                channel["axis"] = {"format": "%b %d, %Y"}
        elif not discrete:
            channel["scale"] = {"type": "utc"}
    else:
        channel["type"] = "ordinal" if discrete else "quantitative"
    return channel


def _order(rows: list[dict[str, Any]], dim: Dimension, measure: Measure) -> list[str]:
    """Categories by their measure, largest first; "Other" and nulls after the rest."""
    totals: dict[str, float] = {}
    for r in rows:
        value = r.get(measure.name) or 0
        label = r[dim.field]
        totals[label] = (
            totals.get(label, 0) + value
            if measure.foldable
            else max(totals.get(label, value), value)
        )
    last = [v for v in totals if v == NULL_LABEL or v.startswith("Other (")]
    ranked = sorted((v for v in totals if v not in last), key=lambda v: -totals[v])
    return ranked + last


def value_channel(measure: Measure) -> dict[str, Any]:
    return {"field": ref(measure.name), "type": "quantitative", "title": measure_title(measure)}


def raw_channel(column: Column, discrete: bool = False) -> dict[str, Any]:
    """The encoding of a column drawn row by row (point, boxplot)."""
    channel: dict[str, Any] = {"field": ref(field_of(column)), "title": capitalized(column.name)}
    if column.kind in NUMERIC:
        channel["type"] = "ordinal" if discrete else "quantitative"
        if not discrete:
            channel["scale"] = {"zero": False}
    elif column.kind in TEMPORAL:
        channel["type"] = "ordinal" if discrete else "temporal"
        if not discrete:
            channel["scale"] = {"type": "utc"}
    else:
        channel["type"] = "nominal"
    return channel


def tooltip(dims: list[Dimension], measure: Measure) -> list[dict[str, Any]]:
    out = []
    for dim in dims:
        tip: dict[str, Any] = {"field": ref(dim.field), "title": dim.title}
        if dim.key.binned:
            tip.update(type="quantitative", title=f"{dim.title}, from")
            out += [tip, {"field": ref(dim.end), "type": "quantitative", "title": "to"}]
            continue
        if dim.nominal:
            tip["type"] = "nominal"
        elif dim.column.kind in TEMPORAL:
            tip["type"] = "temporal"
            unit = dim.key.unit or ("day" if dim.column.kind == "date" else None)
            if unit:
                tip["timeUnit"] = data.VEGA_UNITS["day" if unit == "week" else unit]
        else:
            tip["type"] = "quantitative"
        out.append(tip)
    out.append(
        {"field": ref(measure.name), "type": "quantitative", "title": measure_title(measure)}
    )
    if measure.function != "count":
        out.append({"field": "count", "type": "quantitative", "title": "Rows"})
    return out


def _width(rows: list[dict[str, Any]], dim: Dimension) -> Any:
    if dim.key.binned or (dim.column.kind in TEMPORAL and not dim.nominal):
        return 480
    return {"step": 24}


def measure_title(measure: Measure) -> str:
    if measure.function == "count" or measure.column is None:
        return "Number of rows"
    return f"{MEASURE_TITLES[measure.function]} {words(measure.column)}"


def ref(name: str) -> str:
    """A field name as Vega-Lite reads it: dots and brackets would mean nested fields."""
    for c in "\\.[]":
        name = name.replace(c, "\\" + c)
    return name


def short(name: str) -> str:
    return name if len(name) <= LABEL_MAX else name[: LABEL_MAX - 1] + "…"


def words(name: str) -> str:
    """A column's name as words in titles: ``dep_delay`` is "dep delay"; long names cut."""
    words = name.replace("_", " ").strip() or name
    return words if len(words) <= TITLE_MAX else words[: TITLE_MAX - 1] + "…"


def capitalized(name: str) -> str:
    """A column's name as a title: ``dep_delay`` is "Dep delay"."""
    text = words(name)
    return text[:1].upper() + text[1:]


def labelled(rows: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Categories as chart text, one label per value even when long values are cut alike."""
    labels: dict[Any, str] = {}
    used: set[str] = set()
    for value in dict.fromkeys(r[field] for r in rows):
        label = base = category_label(value)
        n = 1
        while label in used:
            n += 1
            label = f"{base} ({n})"
        labels[value] = label
        used.add(label)
    return [{**r, field: labels[r[field]]} for r in rows]


def category_label(value: Any) -> str:
    """A category as chart text: null labelled, booleans as JSON spells them, long text cut."""
    if value is None:
        return NULL_LABEL
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def utc(value: Any) -> Any:
    """A stored date or datetime as JavaScript reads it in UTC: a naive time gets its Z."""
    if isinstance(value, str) and len(value) > 10 and not value.endswith("Z"):
        return value + "Z"
    return value


ENCODERS = {"bar": bar, "line": line, "area": area, "arc": arc, "rect": rect}
