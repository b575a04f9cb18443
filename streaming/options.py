"""Upload options for how values are read: checked when the upload arrives, applied at sync.

An upload (or a source) may say how its values are written; the route checks the query with
``upload_options`` before anything is stored, so a mistake is a 400 rather than a failed job,
and keeps the result in the job's options (JSON). The sync turns those into a
``streaming.convert.Reading`` with ``reading``::

    types=zip:string,amount:number    force columns' types (TYPE as in GET /datasets/ID)
    decimal=,                         numbers written 1.234,56 (default ".")
    header=false                      the first line is data: columns column_1, column_2, ...
    sheet=2024                        a workbook's sheet by name (default: the first)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streaming.coerce import TYPES
from streaming.convert import Reading
from streaming.errors import BadRequest

OPTIONS = ("types", "decimal", "header", "sheet")
# The column types in the order the API lists them (the same set as streaming.coerce.TYPES).
TYPE_NAMES = ("integer", "number", "boolean", "date", "datetime", "string", "null")
assert set(TYPE_NAMES) == set(TYPES)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def upload_options(query: Mapping[str, str]) -> dict[str, Any]:
    """The reading options of an upload's query; BadRequest names a wrong one.

    >>> upload_options({"types": "zip:string,amount:number", "header": "false"})
    {'types': {'zip': 'string', 'amount': 'number'}, 'decimal': '.', 'header': False, 'sheet': None}
    """
    return {
        "types": parse_types(query.get("types")),
        "decimal": parse_decimal(query.get("decimal")),
        "header": parse_header(query.get("header")),
        "sheet": query.get("sheet") or None,
    }


def parse_types(text: str | None) -> dict[str, str] | None:
    """``COL:TYPE,COL:TYPE`` as {column: type}; None when absent. A column name may hold ":"
    (the type is after the last one), not ","."""
    if not text:
        return None
    types: dict[str, str] = {}
    for item in text.split(","):
        name, colon, kind = item.rpartition(":")
        name, kind = name.strip(), kind.strip().lower()
        if not colon or not name:
            raise _bad("types", f"types takes COLUMN:TYPE pairs, comma-separated; got {item!r}")
        if kind not in TYPES:
            raise _bad(
                "types",
                f"unknown type {kind!r} for column {name!r} in types; use one of "
                + ", ".join(TYPE_NAMES),
            )
        if types.get(name, kind) != kind:
            raise _bad("types", f"column {name!r} is given two types in types")
        types[name] = kind
    return types


def parse_decimal(text: str | None) -> str:
    if text is None or text == ".":
        return "."
    if text == ",":
        return ","
    raise _bad("decimal", f"decimal must be '.' or ',', not {text!r}")


def parse_header(text: str | None) -> bool:
    if text is None or text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise _bad("header", f"header must be true or false, not {text!r}")


def reading(options: Mapping[str, Any], date_order: str) -> Reading:
    """How the sync reads values, from a job's options (absent ones take their defaults:
    jobs recorded before these options existed have none)."""
    header = options.get("header")
    return Reading(
        decimal=options.get("decimal") or ".",
        date_order=date_order,
        types=options.get("types") or None,
        header=True if header is None else bool(header),
        sheet=options.get("sheet") or None,
    )


def _bad(parameter: str, message: str) -> BadRequest:
    return BadRequest(message, code="bad_parameter", parameter=parameter)
