"""Output encoders: stored rows (JSON arrays) to the JSON, NDJSON and CSV that clients read.

Stored lines are decoded a block at a time (one ``orjson.loads`` per block, not per row) and
re-encoded as objects keyed by column name, or as CSV rows, in the projection's order. CSV is
safe to open in a spreadsheet unless CSV_SAFE is off: a text cell that would start a formula
gets a leading ``'`` (OWASP's advice for CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

FORMATS = ("json", "ndjson", "csv")
MEDIA_TYPES = {
    "json": "application/json; charset=utf-8",
    "ndjson": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}


class Projection:
    """Which stored columns to output, by name, in the order asked for."""

    def __init__(self, names: Sequence[str], wanted: Sequence[str] | None = None) -> None:
        self.all_names = list(names)
        self.names = list(wanted) if wanted else list(names)
        positions = {name: i for i, name in enumerate(names)}
        self.positions = [positions[name] for name in self.names]
        self.identity = self.positions == list(range(len(names)))

    def arrays(self, rows: Sequence[list[Any]]) -> Sequence[list[Any]]:
        """Rows' values (header order) cut down to the projection, in its order."""
        if self.identity:
            return rows
        positions = self.positions
        return [[row[i] for i in positions] for row in rows]

    def objects(self, rows: Sequence[list[Any]]) -> list[dict[str, Any]]:
        names = self.names
        return [dict(zip(names, row)) for row in self.arrays(rows)]


def decode(lines: Sequence[bytes]) -> list[list[Any]]:
    """Stored lines (JSON arrays) to rows, in one ``orjson.loads``."""
    if not lines:
        return []
    rows: list[list[Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
    return rows


def ndjson(projection: Projection, rows: Sequence[list[Any]]) -> bytes:
    objects = projection.objects(rows)
    if not objects:
        return b""
    return b"\n".join(map(orjson.dumps, objects)) + b"\n"


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_header(projection: Projection, safe: bool = True) -> bytes:
    names = [_neutral(n) for n in projection.names] if safe else projection.names
    return _csv_rows([names])


def csv_rows(projection: Projection, rows: Sequence[list[Any]], safe: bool = True) -> bytes:
    cell = _safe_cell if safe else _csv_cell
    return _csv_rows([[cell(v) for v in row] for row in projection.arrays(rows)])


def _neutral(text: str) -> str:
    """Text a spreadsheet shows as text: a leading quote before what would start a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _safe_cell(value: Any) -> Any:
    return _neutral(value) if isinstance(value, str) else _csv_cell(value)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _csv_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def stream(
    projection: Projection, fmt: str, blocks: Iterable[Sequence[list[Any]]], safe: bool = True
) -> Iterator[bytes]:
    """Encode blocks of rows as ``fmt`` (ndjson or csv), one output chunk a block."""
    if fmt == "csv":
        yield csv_header(projection, safe)
        for rows in blocks:
            yield csv_rows(projection, rows, safe)
    else:
        for rows in blocks:
            yield ndjson(projection, rows)
