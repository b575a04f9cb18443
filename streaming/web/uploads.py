"""A request body that is a CSV: its reading options checked, then spooled to disk.

An upload (``POST /datasets``) and new data for a dataset (``POST /datasets/ID/sync``) take
the same body and the same options; both go through ``receive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming import params
from streaming.convert import WIDE_ENCODINGS, resolve_encoding
from streaming.options import upload_options
from streaming.upload import spool_upload
from streaming.web.exchange import Call
from streaming.web.openapi import param
from streaming.web.state import Rillet

UPLOAD_PARAMETERS = (
    param("delimiter", {"type": "string"}, "Field delimiter; sniffed if absent."),
    param("encoding", {"type": "string"}, "Text encoding (default utf-8)."),
    param("types", {"type": "string"}, "Forced column types: COL:TYPE,COL:TYPE."),
    param("decimal", {"type": "string", "enum": [".", ","]}, "Decimal mark (default '.')."),
    param(
        "header",
        {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
        "false: the first line is data (columns column_1, column_2, ...).",
    ),
    param("sheet", {"type": "string"}, "A workbook's sheet (default: the first)."),
    param(
        "roles",
        {"type": "string"},
        "Corrected column roles: COL:ROLE,COL:ROLE (measure, category, time, date_part, "
        "clock, identifier, text).",
    ),
)
UPLOAD_CONTENT = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    },
    "text/csv": {"schema": {"type": "string"}},
    "application/gzip": {"schema": {"type": "string", "format": "binary"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
}


@dataclass(frozen=True)
class Received:
    """A request body spooled to disk: what it was (``source``), how to read it, its name."""

    source: dict[str, Any]  # filename, bytes, sha256
    options: dict[str, Any]  # delimiter, encoding, types, decimal, header, sheet
    given: frozenset[str]  # the options the request named
    name: str


def receive(rillet: Rillet, call: Call, dest: Path) -> Received:
    """Check the upload options of the query (400 before a byte is stored), then spool the
    body to ``dest`` (``streaming.upload``: 413, 415, 422 for an empty file)."""
    values = call.params
    delimiter = params.delimiter(values)
    reading = upload_options(values)  # a wrong type name is a 400 before a byte is stored
    encoding = resolve_encoding(values.get("encoding")) if values.get("encoding") else None
    name = values.get("name") or None
    spooled = spool_upload(
        dict(call.environ),
        dest,
        max_bytes=rillet.settings.max_upload_mb * 2**20,
        name=name,
        # UTF-16 and UTF-32 text is full of NUL bytes: no binary sniffing for them.
        binary_check=not (encoding or "").startswith(WIDE_ENCODINGS),
    )
    source = {"filename": spooled.filename, "bytes": spooled.bytes, "sha256": spooled.sha256}
    options = {"delimiter": delimiter, "encoding": encoding, **reading}
    given = frozenset(n for n in options if values.get(n) not in (None, ""))
    return Received(source, options, given, name or spooled.filename)
