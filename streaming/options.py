"""Upload options for how values are read: checked when the upload arrives, applied at sync.

An upload (or a source) may say how its values are written; the route checks the query with
``upload_options`` before anything is stored, so a mistake is a 400 rather than a failed job,
and keeps the result in the job's options (JSON). The sync turns those into a
``streaming.convert.Reading`` with ``reading``::

    types=zip:string,amount:number    force columns' types (TYPE as in GET /datasets/ID)
    decimal=,                         numbers written 1.234,56 (default ".")
    header=false                      the first line is data: columns column_1, column_2, ...
    sheet=2024                        a workbook's sheet by name (default: the first)
    roles=flight:identifier           correct what charts and insights take a column for
                                      (``charts.columns``); kept in METADATA, checked against
                                      the columns' types when the sync has typed them
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streaming.coerce import TYPES
from streaming.convert import Reading
from streaming.errors import BadRequest, InvalidCSV

OPTIONS = ("types", "decimal", "header", "sheet", "roles")
# The column types in the order the API lists them (the same set as streaming.coerce.TYPES).
TYPE_NAMES = ("integer", "number", "boolean", "date", "datetime", "string", "null")
assert set(TYPE_NAMES) == set(TYPES)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
# The roles a column can be given (``charts.columns`` says what each means), and which of them
# each type of column can take: a correction cannot make text a measure.
ROLES = ("measure", "category", "time", "date_part", "clock", "identifier", "text")
ROLES_OF_TYPE: dict[str, frozenset[str]] = {
    "integer": frozenset(["measure", "category", "date_part", "clock", "identifier"]),
    "number": frozenset(["measure", "category", "identifier"]),
    "string": frozenset(["category", "identifier", "text"]),
    "boolean": frozenset(["category"]),
    "date": frozenset(["time", "category"]),
    "datetime": frozenset(["time", "category"]),
    "null": frozenset(),
}


def upload_options(query: Mapping[str, str]) -> dict[str, Any]:
    """The reading options of an upload's query; BadRequest names a wrong one.

    >>> upload_options({"types": "zip:string,amount:number", "header": "false"})["types"]
    {'zip': 'string', 'amount': 'number'}
    """
    return {
        "types": parse_types(query.get("types")),
        "decimal": parse_decimal(query.get("decimal")),
        "header": parse_header(query.get("header")),
        "sheet": query.get("sheet") or None,
        "roles": parse_roles(query.get("roles")),
    }


def parse_roles(text: str | None) -> dict[str, str] | None:
    """``COL:ROLE,COL:ROLE`` as {column: role}; None when absent (read as ``types`` is)."""
    pairs = _pairs("roles", text, ROLES, "role")
    return pairs or None


def check_roles(roles: Mapping[str, str] | None, columns: list[dict[str, Any]]) -> None:
    """InvalidCSV when ``roles`` names a column the file lacks (``unknown_column``) or gives
    one a role its type cannot take (``role_mismatch``): checked once the sync typed them."""
    kinds = {c["name"]: c["type"] for c in columns}
    for name, role in (roles or {}).items():
        if name not in kinds:
            listed = ", ".join(repr(c["name"]) for c in columns[:20])
            raise InvalidCSV(
                f"roles names column {name!r}, which the file does not have "
                f"(its columns: {listed})",
                code="unknown_column",
            )
        if role not in ROLES_OF_TYPE.get(kinds[name], frozenset()):
            allowed = ", ".join(r for r in ROLES if r in ROLES_OF_TYPE.get(kinds[name], ()))
            raise InvalidCSV(
                f"column {name!r} is {kinds[name]}: it cannot be a {role} "
                f"(roles it can take: {allowed or 'none'})",
                code="role_mismatch",
            )


def parse_types(text: str | None) -> dict[str, str] | None:
    """``COL:TYPE,COL:TYPE`` as {column: type}; None when absent. A column name may hold ":"
    (the type is after the last one), not ","."""
    return _pairs("types", text, TYPE_NAMES, "type") or None


def _pairs(parameter: str, text: str | None, allowed: tuple[str, ...], noun: str) -> dict[str, str]:
    """``COL:VALUE,COL:VALUE`` as {column: value}, each value one of ``allowed``."""
    if not text:
        return {}
    pairs: dict[str, str] = {}
    for item in text.split(","):
        name, colon, value = item.rpartition(":")
        name, value = name.strip(), value.strip().lower()
        if not colon or not name:
            raise _bad(
                parameter,
                f"{parameter} takes COLUMN:{noun.upper()} pairs, comma-separated; got {item!r}",
            )
        if value not in allowed:
            raise _bad(
                parameter,
                f"unknown {noun} {value!r} for column {name!r} in {parameter}; use one of "
                + ", ".join(allowed),
            )
        if pairs.get(name, value) != value:
            raise _bad(parameter, f"column {name!r} is given two {noun}s in {parameter}")
        pairs[name] = value
    return pairs


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
