"""The rows a chart draws, computed on the server and bounded whatever the dataset's size.

Four sources, cheapest first:

- statistics (no scan): the sync's 20-bin histogram of a numeric column, and the counts of a
  column whose every value is in its exact top list;
- groups (one scan, or the columns): the query layer's group-by (``streaming.query.RUNNER``,
  from the columns where they answer) over the exact values of one or two columns;
- buckets (one scan; two when filters need the matching rows' range first): the same
  aggregates, but keyed by a time bucket (a date truncated to its month) or a numeric bin;
- sample (no scan without filters): the sync's uniform sample of 1,000 rows; with filters, a
  uniform sample of the matching rows drawn in one scan with the same reservoir.

Groups come out in the engine's shape: ``{COLUMN: value, ..., "count": n, "sum_COL": s}``.
``fold`` then caps a dimension at a number of values, folding the least frequent into one
"Other (N more)" value (or dropping them when the aggregate cannot be folded: a mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import compress, repeat
from operator import add, eq, itemgetter
from typing import Any

import orjson

from charts import buckets
from streaming.aggregate import Aggregate
from streaming.convert import SAMPLE_FILE
from streaming.filter import Selection
from streaming.query import RUNNER
from streaming.read import Dataset
from streaming.scan import blocks
from streaming.sketches import Reservoir

SAMPLE_ROWS = 1000
FOLDABLE = frozenset(["count", "sum", "min", "max"])  # aggregates an "other" group can merge

# Time buckets, finest first: name, approximate length in days, Vega-Lite UTC time unit.
TIME_UNITS: tuple[tuple[str, float, str], ...] = (
    ("minute", 1 / 1440, "utcyearmonthdatehoursminutes"),
    ("hour", 1 / 24, "utcyearmonthdatehours"),
    ("day", 1.0, "utcyearmonthdate"),
    ("week", 7.0, "utcyearweek"),
    ("month", 30.44, "utcyearmonth"),
    ("year", 365.25, "utcyear"),
)
VEGA_UNITS = {name: unit for name, _, unit in TIME_UNITS}


@dataclass(frozen=True)
class Key:
    """How one dimension's values become group keys: as they are, a time bucket, or a bin."""

    column: str
    position: int
    kind: str  # the column's type
    unit: str | None = None  # time bucket: minute, hour, day, week, month, year
    start: float = 0.0  # numeric bins: the first edge and the width
    step: float = 0.0
    decimals: int = 0  # edges are rounded to this many decimals (0.1 + 0.2 is no edge)

    @property
    def exact(self) -> bool:
        """Whether keys are the values themselves (a date's day is the date)."""
        plain_day = self.unit == "day" and self.kind == "date"
        return not self.step and (self.unit is None or plain_day)

    @property
    def binned(self) -> bool:
        return bool(self.step)

    def edge(self, i: int) -> float:
        """The left edge of bin ``i``."""
        value = round(self.start + i * self.step, self.decimals)
        return int(value) if self.decimals == 0 else value

    def bucket(self, value: Any) -> Any:
        """The group key of one value (None stays None)."""
        if value is None or self.exact:
            return value
        if self.unit is not None:
            return truncate(value, self.unit)
        i = math.floor((value - self.start) / self.step)
        if value >= self.edge(i + 1):  # float division can land a value on the wrong side
            i += 1
        elif value < self.edge(i):
            i -= 1
        return self.edge(i)


def truncate(text: str, unit: str) -> str:
    """An ISO date or datetime truncated to the start of its time bucket, read as UTC."""
    if unit == "minute":
        return text[:16] + ":00Z"
    if unit == "hour":
        return text[:13] + ":00:00Z"
    if unit == "day":
        return text[:10]
    if unit == "month":
        return text[:7] + "-01"
    if unit == "year":
        return text[:4] + "-01-01"
    day = date.fromisoformat(text[:10])  # week: back to its Sunday, as Vega-Lite's weeks go
    return (day - timedelta(days=(day.weekday() + 1) % 7)).isoformat()


def time_unit(low: str, high: str, kind: str, cap: int) -> str:
    """The finest time bucket that splits [low, high] into at most ``cap`` buckets."""
    span = _days(high) - _days(low)
    for name, days, _ in TIME_UNITS:
        if kind == "date" and days < 1:
            continue
        if span / days + 1 <= cap:
            return name
    return "year"


def _days(text: str) -> float:
    day = date.fromisoformat(text[:10]).toordinal()
    if len(text) >= 16:
        return day + int(text[11:13]) / 24 + int(text[14:16]) / 1440
    return float(day)


def bins(low: float, high: float, count: int, integral: bool) -> tuple[float, float, int]:
    """A nice first edge, width (1, 2 or 5 times a power of ten) and decimals for about
    ``count`` bins over [low, high]."""
    raw = (high - low) / max(count, 1) or 1.0
    power = math.floor(math.log10(raw))
    step = 10.0**power
    for factor in (1, 2, 5, 10):
        step = factor * 10.0**power
        if step >= raw:
            break
    if integral and step < 1:
        step, power = 1.0, 0
    decimals = max(0, -power)
    step = round(step, decimals)
    start = round(math.floor(low / step) * step, decimals)
    return start, step, decimals


# --- Measures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """The aggregate a chart shows: ``count`` of rows, or FUNCTION of a numeric column."""

    function: str
    column: str | None = None
    position: int | None = None
    field: str | None = None  # the data field, when the engine's name would not do (too long)

    @property
    def name(self) -> str:
        """The data field: named as ``/groupby`` names it (``count``, ``mean_dep_delay``)."""
        return self.field or self.engine_name

    @property
    def engine_name(self) -> str:
        return Aggregate(self.function, self.column, self.position).name

    @property
    def foldable(self) -> bool:
        return self.function in FOLDABLE


# --- Groups: the engine, or the statistics when they hold the answer -------------------------


@dataclass
class Groups:
    """Aggregated rows and how they were computed."""

    rows: list[dict[str, Any]]
    source: str  # statistics, groupby, buckets
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


def aggregate(
    dataset: Dataset,
    query: Selection,
    keys: Sequence[Key],
    measure: Measure,
    stats: dict[str, Any],
    max_groups: int,
) -> Groups:
    """One row per group of ``keys`` with ``count`` and the measure."""
    if len(keys) == 1 and keys[0].exact and measure.function == "count" and not query.active:
        counted = _counted(keys[0].column, stats.get(dataset.names[keys[0].position]) or {})
        if counted is not None:
            return Groups(counted, "statistics")
    # The engine names its fields after the columns and aggregates, which must then be the
    # chart's fields too, and distinct ("count" as a column would be overwritten).
    names = [k.column for k in keys]
    plain = all(k.exact and k.column == dataset.names[k.position] for k in keys)
    clash = measure.name in names or "count" in names or measure.name != measure.engine_name
    if plain and not clash:
        aggregates = [Aggregate("count", None, None)]
        if measure.function != "count":
            aggregates.append(Aggregate(measure.function, measure.column, measure.position))
        rows, truncated = RUNNER.groups(
            dataset, query, [k.position for k in keys], aggregates, max_groups
        )
        return Groups(rows, "groupby", truncated)
    folded = _folded_groups(dataset, query, keys, measure, stats, max_groups)
    if folded is not None:
        return Groups(folded, "groupby")
    rows, truncated = _buckets(dataset, query, keys, measure, max_groups)
    return Groups(rows, "buckets", truncated)


def _folded_groups(
    dataset: Dataset,
    query: Selection,
    keys: Sequence[Key],
    measure: Measure,
    stats: dict[str, Any],
    max_groups: int,
) -> list[dict[str, Any]] | None:
    """Bucketed groups made by grouping the keys' exact values (from the columns, where they
    answer) and folding those groups into their buckets: a date's days into weeks or months,
    an integer's values into bins. None when that would not do: too many exact values, or a
    mean over a column with nulls (its groups say their rows, not their values)."""
    names = [dataset.names[k.position] for k in keys]
    distinct = math.prod((stats.get(n) or {}).get("distinct") or max_groups for n in names)
    if distinct > max_groups // 2 or any(k.kind in ("number", "datetime") for k in keys):
        return None  # many exact values: one scan into buckets is cheaper than groups of them
    nulls = (stats.get(measure.column or "") or {}).get("nulls")
    if measure.function == "mean" and nulls != 0:
        return None
    function = "sum" if measure.function == "mean" else measure.function
    aggregates = [Aggregate("count", None, None)]
    if measure.function != "count":
        aggregates.append(Aggregate(function, measure.column, measure.position))
    field_name = aggregates[-1].name
    if "count" in names or field_name in names or len(set(names)) < len(names):
        return None  # the engine's fields would overwrite each other
    positions = [k.position for k in keys]
    groups, truncated = RUNNER.groups(dataset, query, positions, aggregates, max_groups)
    if truncated:
        return None
    cells: dict[tuple[Any, ...], _Cell] = {}
    for group in groups:
        key = tuple(k.bucket(group[n]) for k, n in zip(keys, names))
        cell = cells.setdefault(key, _Cell())
        cell.count += group["count"]
        if measure.function != "count" and group.get(field_name) is not None:
            _fold_group(cell, group[field_name], group["count"], function)
    out = []
    for key, cell in cells.items():
        row: dict[str, Any] = dict(zip([k.column for k in keys], key))
        row["count"] = cell.count
        if measure.function != "count":
            row[measure.name] = _value(cell, measure.function)
        out.append(row)
    return out


def _fold_group(cell: _Cell, value: Any, rows: int, function: str) -> None:
    """One exact value's group into its bucket's cell (a sum, a least or a most)."""
    if function == "sum":
        cell.total += value
        cell.n += rows  # a mean's values: every row's, the column having no nulls
        return
    cell.n += 1
    cell.low = value if cell.low is None else min(cell.low, value)
    cell.high = value if cell.high is None else max(cell.high, value)


def _counted(column: str, s: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Counts of every value of a column, from its statistics ``s``, when they are all there
    and exact: what the engine would count, without a scan."""
    top = s.get("top") or []
    if not s.get("distinct_exact") or sum(t["count"] for t in top) != s.get("count"):
        return None
    rows = [{column: t["value"], "count": t["count"]} for t in top]
    if s.get("nulls"):
        rows.append({column: None, "count": s["nulls"]})
    return rows


class _Cell:
    __slots__ = ("count", "high", "low", "n", "total")

    def __init__(self) -> None:
        self.count = 0
        self.n = 0  # non-null values of the measure
        self.total: Any = 0
        self.low: Any = None
        self.high: Any = None


def _buckets(
    dataset: Dataset, query: Selection, keys: Sequence[Key], measure: Measure, max_groups: int
) -> tuple[list[dict[str, Any]], bool]:
    """The group-by of ``aggregate`` with bucketed keys, in the engine's output shape: from
    the columns where they answer (``charts.buckets``), else by a scan of the rows."""
    cells: dict[tuple[Any, ...], _Cell] = {}
    truncated = False
    from_columns = buckets.batches(dataset, query, keys, measure.position)
    if from_columns is not None:
        try:
            for groups in from_columns:
                truncated |= _add_groups(cells, groups, max_groups)
            return _rows(cells, keys, measure), truncated
        except buckets.DAMAGE as exc:  # a damaged segment: start again from the rows
            buckets.damaged(dataset, exc)
            cells, truncated = {}, False
    pending: list[list[Any]] = []
    for block in blocks(dataset, query):
        pending.extend(block.rows)
        if len(pending) >= _BATCH:  # a batch of thousands of rows, as the engine folds them
            truncated |= _add(cells, pending, keys, measure, max_groups)
            pending = []
    if pending:
        truncated |= _add(cells, pending, keys, measure, max_groups)
    return _rows(cells, keys, measure), truncated


def _rows(
    cells: dict[tuple[Any, ...], _Cell], keys: Sequence[Key], measure: Measure
) -> list[dict[str, Any]]:
    names = [k.column for k in keys]
    out = []
    for key, cell in cells.items():
        row: dict[str, Any] = dict(zip(names, key))
        row["count"] = cell.count
        if measure.function != "count":
            row[measure.name] = _value(cell, measure.function)
        out.append(row)
    return out


_BATCH = 4096
_FEW = 16  # up to this many groups in a batch, rows are split by key in C


def _add(
    cells: dict[tuple[Any, ...], _Cell],
    rows: list[list[Any]],
    keys: Sequence[Key],
    measure: Measure,
    max_groups: int,
) -> bool:
    """Fold a batch of rows into their cells; True if a new group had to be left out."""
    columns = [_keyed(k, list(map(itemgetter(k.position), rows))) for k in keys]
    group_keys = list(zip(*columns))
    position = measure.position
    values = list(map(itemgetter(position), rows)) if position is not None else None
    distinct = set(group_keys)
    shares: dict[tuple[Any, ...], list[Any]]
    if len(distinct) <= _FEW:
        masks = {k: list(map(eq, group_keys, repeat(k))) for k in distinct}
        shares = {k: list(compress(values or group_keys, m)) for k, m in masks.items()}
    else:
        shares = {}
        for k, v in zip(group_keys, values or group_keys):
            shares.setdefault(k, []).append(v)
    groups = [  # in order of first sight
        (k, len(shares[k]), None if values is None else shares[k])
        for k in dict.fromkeys(group_keys)
    ]
    return _add_groups(cells, groups, max_groups)


def _add_groups(
    cells: dict[tuple[Any, ...], _Cell],
    groups: list[tuple[tuple[Any, ...], int, list[Any] | None]],
    max_groups: int,
) -> bool:
    """Fold a batch's groups (key, rows, measure values or None) into their cells; True if a
    new group had to be left out."""
    truncated = False
    for key, rows, values in groups:
        cell = cells.get(key)
        if cell is None:
            if len(cells) >= max_groups:
                truncated = True
                continue
            cell = cells[key] = _Cell()
        cell.count += rows
        if values is not None:
            _fold_values(cell, [v for v in values if v is not None])
    return truncated


_SLICES = {"minute": (16, ":00Z"), "hour": (13, ":00:00Z"), "day": (10, ""), "month": (7, "-01")}
_SLICES["year"] = (4, "-01-01")


def _keyed(key: Key, values: list[Any]) -> list[Any]:
    """A batch of a column's values as group keys, computed in C where it can be."""
    if key.exact:
        return values
    if key.unit in _SLICES and None not in values:
        stop, suffix = _SLICES[key.unit]
        return list(map(add, map(itemgetter(slice(0, stop)), values), repeat(suffix)))
    if key.unit == "week" and key.kind == "datetime":  # by day first: a batch holds few days
        values = [v if v is None else v[:10] for v in values]
    memo = {v: key.bucket(v) for v in set(values)}
    return list(map(memo.__getitem__, values))


def _fold_values(cell: _Cell, values: list[Any]) -> None:
    if not values:
        return
    cell.n += len(values)
    cell.total += math.fsum(values) if isinstance(values[0], float) else sum(values)
    low, high = min(values), max(values)
    cell.low = low if cell.low is None else min(cell.low, low)
    cell.high = high if cell.high is None else max(cell.high, high)


def _value(cell: _Cell, function: str) -> Any:
    if function == "sum":
        return cell.total
    if function == "mean":
        return cell.total / cell.n if cell.n else None
    return cell.low if function == "min" else cell.high


def extent(dataset: Dataset, query: Selection, key: Key) -> tuple[Any, Any]:
    """The lowest and highest value of a column among the rows that match: from the columns
    where they answer, else one scan."""
    found = buckets.extent(dataset, query, key)
    if found is not None:
        return found
    low: Any = None
    high: Any = None
    for block in blocks(dataset, query):
        values = [v for v in map(itemgetter(key.position), block.rows) if v is not None]
        if values:
            if key.kind == "datetime":  # compare the instants, whatever the fraction's width
                values = [v[:19] for v in values]
            a, b = min(values), max(values)
            low = a if low is None else min(low, a)
            high = b if high is None else max(high, b)
    return low, high


# --- Folding a dimension into its most frequent values ---------------------------------------


def fold(
    rows: list[dict[str, Any]], column: str, cap: int, measure: Measure
) -> tuple[list[dict[str, Any]], list[Any], int, str | None]:
    """Keep a dimension's ``cap`` most frequent values (by rows); the rest become one group
    "Other (N more)" when the measure can be merged so, else they are dropped.

    Returns the rows, the kept values (most frequent first), how many values were folded or
    dropped, and the label of the merged group (None if there is none).
    """
    totals: dict[Any, int] = {}
    for row in rows:
        totals[row[column]] = totals.get(row[column], 0) + row["count"]
    ranked = sorted(totals, key=lambda v: (-totals[v], _order(v)))
    if len(ranked) <= cap:
        return rows, ranked, 0, None
    if not measure.foldable:
        kept = set(ranked[:cap])
        return [r for r in rows if r[column] in kept], ranked[:cap], len(ranked) - cap, None
    kept = set(ranked[: cap - 1])
    label = other_label(len(ranked) - cap + 1, {str(v) for v in ranked})
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    out = []
    for row in rows:
        if row[column] in kept:
            out.append(row)
            continue
        rest = tuple((k, v) for k, v in row.items() if k != column and k in _dims(row, measure))
        into = merged.get(rest)
        if into is None:
            merged[rest] = {**row, column: label}
        else:
            _merge(into, row, measure)
    out.extend(merged.values())
    return out, [*ranked[: cap - 1], label], len(ranked) - cap + 1, label


def _dims(row: dict[str, Any], measure: Measure) -> set[str]:
    return set(row) - {"count", measure.name}


def _merge(into: dict[str, Any], row: dict[str, Any], measure: Measure) -> None:
    into["count"] += row["count"]
    name, function = measure.name, measure.function
    if function == "count" or row.get(name) is None:
        return
    if into.get(name) is None:
        into[name] = row[name]
    elif function == "sum":
        into[name] += row[name]
    elif function == "min":
        into[name] = min(into[name], row[name])
    elif function == "max":
        into[name] = max(into[name], row[name])


def other_label(folded: int, taken: set[str]) -> str:
    """The label of the group that holds the values left out, unlike any real value."""
    label = f"Other ({folded:,} more)"
    while label in taken:
        label += " "
    return label


def _order(value: Any) -> tuple[int, Any]:
    """A sort key across types: nulls last, numbers before text."""
    if value is None:
        return (3, 0)
    if isinstance(value, bool | int | float):
        return (0, value)
    return (1, str(value))


# --- The sample ------------------------------------------------------------------------------


def sample(dataset: Dataset, query: Selection) -> tuple[list[list[Any]], int]:
    """A uniform sample of at most SAMPLE_ROWS matching rows, and how many rows matched."""
    if not query.active:
        try:
            text = (dataset.folder / SAMPLE_FILE).read_bytes()
        except FileNotFoundError:  # a dataset synced before samples were kept
            pass
        else:
            lines = text.splitlines()
            rows: list[list[Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
            return rows, dataset.rows
    reservoir = Reservoir(SAMPLE_ROWS, seed=0)
    for block in blocks(dataset, query):
        reservoir.update(block.rows)
    return reservoir.items, reservoir.seen


def present(rows: list[list[Any]], positions: Sequence[int]) -> list[list[Any]]:
    """The rows whose values at ``positions`` are all non-null."""
    if not positions:
        return rows
    keep = [all(row[p] is not None for p in positions) for row in rows]
    return list(compress(rows, keep))


def histogram(stats: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """The sync's histogram of a numeric column: ``[{"start", "end", "count"}]``."""
    found: list[dict[str, Any]] = (stats.get(column) or {}).get("histogram") or []
    return found
