"""A chart's parameters checked against its mark and the dataset's columns, before any row is
read: ``check`` answers a ``Request`` or raises BadRequest saying what to change.

What each mark takes (``x``, ``y``, ``color`` name columns):

| mark | x | y | color |
|---|---|---|---|
| bar, line, area | groups (required) | measured, numeric | groups (stacks, series) |
| arc | slices (required) | measured, numeric | — |
| rect | groups (required) | groups (required) | measured, numeric |
| histogram | numeric or date (required) | — | stacks |
| point | any (required) | any (required) | any |
| boxplot | groups (discrete) | numeric (required) | — |

``aggregate`` is ``count`` (rows; the default without a measured column), ``sum`` (the default
for bar, area and arc), ``mean`` (the default for line and rect), ``min`` or ``max``. ``bins``
(1–100) bins a numeric x (and a rect's numeric y).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from charts.data import Measure
from charts.encoding import NUMERIC, TEMPORAL, Column, alias
from streaming.errors import BadRequest

MARKS = ("bar", "line", "area", "point", "arc", "rect", "boxplot", "histogram")
AGGREGATED = frozenset(["bar", "line", "area", "arc", "rect"])
AGGREGATES = ("count", "sum", "mean", "min", "max")
DEFAULT_AGGREGATE = {"bar": "sum", "area": "sum", "arc": "sum", "line": "mean", "rect": "mean"}

COLOR_CAP = 10  # series, stacks, colors
BOX_CAP = 20  # boxes
DEFAULT_BINS = {"bar": 20, "line": 50, "area": 50, "rect": 20, "arc": 10, "histogram": 20}
MAX_BINS = 100

# x, y, color: required, optional, or None when the mark takes no such column.
ROLES: dict[str, tuple[str | None, str | None, str | None]] = {
    "bar": ("required", "optional", "optional"),
    "line": ("required", "optional", "optional"),
    "area": ("required", "optional", "optional"),
    "arc": ("required", "optional", None),
    "rect": ("required", "required", "optional"),
    "histogram": ("required", None, "optional"),
    "point": ("required", "required", "optional"),
    "boxplot": ("optional", "required", None),
}
WHY_NOT = {
    ("arc", "color"): "its slices are colored by x",
    ("histogram", "y"): "it counts rows in bins of x",
    ("boxplot", "color"): "its boxes are the groups of x",
}


@dataclass(frozen=True)
class Request:
    mark: str
    x: Column | None
    y: Column | None
    color: Column | None
    measure: Measure | None  # aggregated marks only
    bins: int | None


def check(
    columns: Mapping[str, Column],
    mark: str | None,
    x: str | None,
    y: str | None,
    color: str | None,
    aggregate: str | None,
    bins: str | int | None,
) -> Request:
    """The request's parameters checked against the mark and the columns."""
    if not mark:
        raise _bad(f"mark is required: one of {', '.join(MARKS)}", "mark")
    if mark not in ROLES:
        raise _bad(f"unknown mark {mark!r}; use one of {', '.join(MARKS)}", "mark")
    given = {"x": x or None, "y": y or None, "color": color or None}
    found: dict[str, Column | None] = {}
    for role, need in zip(("x", "y", "color"), ROLES[mark]):
        name = given[role]
        if name is None and need == "required":
            raise _bad(f"mark={mark} needs {role}: {_role_help(mark, role)}", role)
        if name is not None and need is None:
            why = WHY_NOT.get((mark, role), "")
            raise _bad(f"mark={mark} takes no {role}" + (f": {why}" if why else ""), role)
        found[role] = _column(columns, name, role) if name is not None else None
    cx, cy, cc = found["x"], found["y"], found["color"]
    if cx and cc and cx.name == cc.name and mark != "point":
        raise _bad("color must name another column than x", "color")
    if mark == "rect" and cx and cy and cx.name == cy.name:
        raise _bad("a heatmap's y must name another column than x", "y")
    measure = _measure(mark, cy if mark != "rect" else cc, aggregate)
    count = _bins(bins)
    if count is not None:
        binnable = [c for c in (cx, cy if mark == "rect" else None) if c and c.kind in NUMERIC]
        if mark not in DEFAULT_BINS or mark == "arc" or not binnable:
            raise _bad(
                "bins applies to a numeric x of histogram, bar, line, area or rect "
                "(and a rect's numeric y)",
                "bins",
            )
    if mark == "histogram" and cx and cx.kind not in NUMERIC | TEMPORAL:
        raise _bad(
            f"a histogram needs a numeric or date x; {cx.name!r} is {cx.kind}: "
            "use mark=bar to count its values",
            "x",
        )
    if mark == "boxplot" and cy and cy.kind not in NUMERIC:
        raise _bad(f"a boxplot needs a numeric y; {cy.name!r} is {cy.kind}", "y")
    if mark == "boxplot" and cx and cx.kind not in ("string", "boolean", "null"):
        _few(cx, BOX_CAP, "x", "boxplot draws one box for each value of x")
    if cc and mark in ("bar", "line", "area", "histogram") and cc.kind not in ("string", "boolean"):
        _few(cc, COLOR_CAP, "color", "color groups the rows by its values")
    return Request(mark, cx, cy, cc, measure, count)


def _role_help(mark: str, role: str) -> str:
    if role == "x":
        return {
            "histogram": "the numeric or date column to bin",
            "point": "the column on the horizontal axis",
        }.get(mark, "the column to group by")
    return {"rect": "the second column to group by", "boxplot": "the numeric column"}.get(
        mark, "the column on the vertical axis"
    )


def _column(columns: Mapping[str, Column], name: str, role: str) -> Column:
    column = columns.get(name)
    if column is None:
        raise BadRequest(f"unknown column {name!r} in {role}", code="unknown_column", column=name)
    return column


def _measure(mark: str, column: Column | None, aggregate: str | None) -> Measure | None:
    """The aggregate of an aggregated mark, checked against its measured column."""
    role = "color" if mark == "rect" else "y"
    if mark not in AGGREGATED:
        if aggregate:
            raise _bad(
                f"aggregate applies to {', '.join(sorted(AGGREGATED))}; mark={mark} draws "
                + ("counts of rows" if mark == "histogram" else "rows"),
                "aggregate",
            )
        return None
    if aggregate and aggregate not in AGGREGATES:
        raise _bad(
            f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}", "aggregate"
        )
    function = aggregate or (DEFAULT_AGGREGATE[mark] if column else "count")
    if function == "count":
        if column is not None:
            raise _bad(
                f"aggregate=count counts rows and takes no {role}; leave {role} out, or use "
                "sum, mean, min or max",
                role,
            )
        return Measure("count")
    if column is None:
        raise _bad(f"aggregate={function} needs {role}: the numeric column to aggregate", role)
    if column.kind not in NUMERIC:
        hint = (
            ""
            if aggregate
            else f" (mark={mark} takes its {function}); leave {role} out to count rows"
        )
        raise _bad(
            f"aggregate={function} needs a numeric {role}; {column.name!r} is {column.kind}{hint}",
            role,
        )
    name = alias(column.name, column.position)
    return Measure(
        function,
        column.name,
        column.position,
        None if name == column.name else f"{function}_{name}",
    )


def _bins(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_BINS:
        raise _bad(f"bins must be a whole number from 1 to {MAX_BINS}, not {raw!r}", "bins")
    return count


def _few(column: Column, cap: int, role: str, why: str) -> None:
    if column.distinct > cap:
        raise _bad(
            f"{why}: {column.name!r} has about {column.distinct:,} values; choose a column "
            f"with at most {cap}, or a text column (its most frequent values are kept)",
            role,
        )


def _bad(message: str, parameter: str) -> BadRequest:
    return BadRequest(message, code="bad_parameter", parameter=parameter)
