"""Output encoders: stored rows (JSON arrays) to the JSON, NDJSON and CSV that clients read.

Stored lines are decoded a block at a time (one ``orjson.loads`` per block, not per row) and
re-encoded as objects keyed by column name in the header's order, or as CSV rows.
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

    def arrays(self, lines: Sequence[bytes]) -> list[list[Any]]:
        """Decode stored lines into value lists, projected."""
        if not lines:
            return []
        rows: list[list[Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
        if self.identity:
            return rows
        positions = self.positions
        return [[row[i] for i in positions] for row in rows]

    def objects(self, lines: Sequence[bytes]) -> list[dict[str, Any]]:
        names = self.names
        return [dict(zip(names, row)) for row in self.arrays(lines)]


def ndjson(projection: Projection, lines: Sequence[bytes]) -> bytes:
    objects = projection.objects(lines)
    if not objects:
        return b""
    return b"\n".join(map(orjson.dumps, objects)) + b"\n"


def csv_header(projection: Projection) -> bytes:
    return _csv_rows([projection.names])


def csv_rows(projection: Projection, lines: Sequence[bytes]) -> bytes:
    return _csv_rows([[_csv_cell(v) for v in row] for row in projection.arrays(lines)])


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


def stream(projection: Projection, fmt: str, blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Encode blocks of stored lines as ``fmt`` (ndjson or csv), one output chunk a block."""
    if fmt == "csv":
        yield csv_header(projection)
        for block in blocks:
            yield csv_rows(projection, block.splitlines())
    else:
        for block in blocks:
            yield ndjson(projection, block.splitlines())
