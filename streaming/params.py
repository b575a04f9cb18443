"""Query parameters: the reserved words, and the page parameters every row route shares.

Parameters are read and checked before a response starts, so a mistake is a 400 with the one
error shape rather than a broken stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streaming.encode import FORMATS
from streaming.errors import BadRequest

RESERVED = frozenset(
    [
        "limit",
        "offset",
        "cursor",
        "columns",
        "sort",
        "format",
        "count",
        "q",
        "dataset",
        "metadata_only",
        "by",
        "agg",
        "mark",
        "x",
        "y",
        "color",
        "aggregate",
        "bins",
        "version",
    ]
)


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    columns: list[str] | None
    format: str
    count: bool


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            f"{name} must be a whole number, not {raw!r}", code="bad_parameter", parameter=name
        ) from None
    if not low <= value <= high:
        raise BadRequest(
            f"{name} must be between {low} and {high}, not {value}",
            code="bad_parameter",
            parameter=name,
        )
    return value


def flag(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise BadRequest(
        f"{name} must be 1 or 0 (true or false), not {raw!r}", code="bad_parameter", parameter=name
    )


def columns(query: Mapping[str, str], names: Sequence[str]) -> list[str] | None:
    raw = query.get("columns")
    if not raw:
        return None
    wanted = [c.strip() for c in raw.split(",") if c.strip()]
    known = set(names)
    for name in wanted:
        if name not in known:
            raise BadRequest(
                f"unknown column {name!r} in columns", code="unknown_column", column=name
            )
    return wanted


def output_format(query: Mapping[str, str], formats: Sequence[str], default: str) -> str:
    fmt = query.get("format") or default
    if fmt not in formats:
        raise BadRequest(
            f"format must be one of {', '.join(formats)}, not {fmt!r}",
            code="bad_parameter",
            parameter="format",
        )
    return fmt


def page(query: Mapping[str, str], names: Sequence[str], page_max: int) -> Page:
    fmt = output_format(query, FORMATS, "json")
    return Page(
        limit=integer(query, "limit", min(100, page_max), 1, page_max),
        offset=integer(query, "offset", 0, 0, 2**62),
        columns=columns(query, names),
        format=fmt,
        count=flag(query, "count"),
    )


def only(query: Mapping[str, str], allowed: Sequence[str]) -> None:
    """Reject any parameter but ``allowed`` (for routes that take no filters at all)."""
    for name in query:
        if name not in allowed:
            takes = ", ".join(allowed) if allowed else "no parameters"
            raise BadRequest(
                f"unknown parameter {name!r}; this route takes {takes}",
                code="bad_parameter",
                parameter=name,
            )


def sort(
    query: Mapping[str, str], columns: Sequence[Mapping[str, object]]
) -> tuple[int, bool] | None:
    """``sort=col`` or ``sort=-col``: the column's position and whether descending."""
    raw = query.get("sort")
    if not raw:
        return None
    name = raw[1:] if raw.startswith("-") else raw
    for position, column in enumerate(columns):
        if column["name"] == name:
            return position, raw.startswith("-")
    raise BadRequest(f"cannot sort by {name!r}: no such column", code="unknown_column", column=name)


def delimiter(query: Mapping[str, str]) -> str | None:
    """The upload's ``delimiter``: one character (``\\t`` for tab), or None to sniff it."""
    raw = query.get("delimiter") or None
    if raw == "\\t":
        raw = "\t"
    if raw is not None and len(raw) != 1:
        raise BadRequest(
            f"delimiter must be a single character, not {raw!r}",
            code="bad_parameter",
            parameter="delimiter",
        )
    return raw


def no_filters(query: Mapping[str, str]) -> None:
    """Reject filters (any parameter that is not a reserved word) on a route that takes none."""
    for name in query:
        if name not in RESERVED:
            raise BadRequest(
                f"{name!r} is not a parameter of this route (filters do not apply here)",
                code="bad_parameter",
                parameter=name,
            )


def version(query: Mapping[str, str]) -> int | None:
    """``version=N``: a version of the dataset to read (None: the current one)."""
    if query.get("version") in (None, ""):
        return None
    return integer(query, "version", 1, 1, 2**31)
