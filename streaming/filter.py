"""Filters: query parameters compiled once into a predicate over typed rows.

``COLUMN=VALUE`` is equality, ``COLUMN__OP=VALUE`` applies OP (API.md's table). Values are
read as the column's type, so numbers compare as numbers and dates as dates; null matches only
``isnull`` (``not`` and ``notin`` included, as in SQL). ``q=TEXT`` keeps rows where any string
column contains TEXT in any case.

Each filter also names bytes that a stored line (a JSON array) must contain if its row can
match: the JSON text of an equal string, of a searched substring, one of an ``in`` list's.
``Selection.candidate`` tests those on the raw line, so a scan decodes only the lines that may
match (``streaming.scan``).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import and_, itemgetter
from typing import Any

import orjson

from streaming import coerce
from streaming.errors import BadRequest
from streaming.params import RESERVED
from streaming.stats import moment as _moment

OPERATORS = frozenset(
    [
        "exact",
        "not",
        "gt",
        "gte",
        "lt",
        "lte",
        "contains",
        "icontains",
        "startswith",
        "endswith",
        "in",
        "notin",
        "isnull",
        "notnull",
    ]
)
TEXT_OPERATORS = frozenset(["contains", "icontains", "startswith", "endswith"])
TEXT_TYPES = frozenset(["string", "date", "datetime"])

Test = Callable[[Any], bool]


@dataclass(frozen=True)
class Filter:
    column: str
    position: int
    op: str
    raw: str
    test: Test
    needles: tuple[bytes, ...]  # a matching line holds one of these (empty: no such bytes)
    folded: bool = False  # needles are lower-case and are sought in the lower-cased line
    compare: Callable[[Any, Any], bool] | None = None  # ordered ops: operator.gt & co
    target: Any = None  # the value compared with, as it compares (datetimes: their moment)
    values: tuple[Any, ...] = ()  # in and notin: the listed values, as they compare

    def mask(self, column: list[Any]) -> list[bool]:
        """The test over a column of values; in C where nulls allow it."""
        if self.compare is not None:
            try:  # a null among the values makes an ordered comparison raise TypeError
                return list(map(self.compare, column, repeat(self.target)))
            except TypeError:
                pass
        return list(map(self.test, column))


class Selection:
    """The compiled filters and search of one request."""

    def __init__(self, filters: Sequence[Filter], search: str | None, text_positions: list[int]):
        self.filters = list(filters)
        self.search = search.lower() if search else None
        self._text_positions = text_positions
        self._exact = [f.needles for f in self.filters if f.needles and not f.folded]
        folded = [f.needles for f in self.filters if f.needles and f.folded]
        if self.search:
            folded.append((_json_text(self.search),))
        self._folded = folded

    @property
    def active(self) -> bool:
        return bool(self.filters or self.search)

    @property
    def text_positions(self) -> list[int]:
        """The string columns that ``q`` searches."""
        return self._text_positions

    def fingerprint(self) -> str:
        """Identifies what this query selects (for cursors)."""
        spec = sorted((f.column, f.op, f.raw) for f in self.filters)
        return hashlib.sha256(orjson.dumps([spec, self.search])).hexdigest()[:16]

    def candidate(self, line: bytes) -> bool:
        """False only if the row on this stored line cannot match."""
        for needles in self._exact:
            if not any(n in line for n in needles):
                return False
        if self._folded and line.isascii():  # bytes.lower() folds ASCII only
            lowered = line.lower()
            for needles in self._folded:
                if not any(n in lowered for n in needles):
                    return False
        return True

    @property
    def searchable(self) -> bool:
        """Whether some filter has bytes to search a block for."""
        return bool(self._exact or self._folded)

    @property
    def more_needles(self) -> bool:
        """Whether lines found by ``candidates`` still need ``candidate``'s other needles."""
        return len(self._exact) + len(self._folded) > 1

    def candidates(self, block: bytes) -> tuple[list[int], list[bytes]] | None:
        """The lines of a block (their numbers within it, and their bytes) that may match,
        found by searching the block for a filter's needles instead of testing each line;
        None if this block cannot be searched so (then test each line)."""
        if self._exact:
            haystack, needles = block, self._exact[0]
        elif self._folded and block.isascii():  # bytes.lower() folds ASCII only
            haystack, needles = block.lower(), self._folded[0]
        else:
            return None
        hits: dict[int, bytes] = {}
        for needle in needles:
            line, last = 0, 0
            at = haystack.find(needle)
            while at != -1:
                line += haystack.count(b"\n", last, at)
                start = haystack.rfind(b"\n", 0, at) + 1
                end = haystack.find(b"\n", at)
                if end == -1:  # a last line without its newline
                    end = len(haystack)
                hits[line] = block[start:end]
                last = at
                at = haystack.find(needle, end + 1)
        numbers = sorted(hits)
        return numbers, [hits[n] for n in numbers]

    def mask(self, rows: Sequence[Sequence[Any]]) -> list[bool]:
        """Which of these rows match, computed a filter (a column) at a time."""
        keep: list[bool] | None = None
        for f in self.filters:
            column = list(map(itemgetter(f.position), rows))
            hits = f.mask(column)
            keep = hits if keep is None else list(map(and_, keep, hits))
        if self.search is not None:
            needle, positions = self.search, self._text_positions
            found = [
                any(isinstance(v := row[p], str) and needle in v.lower() for p in positions)
                for row in rows
            ]
            keep = found if keep is None else list(map(and_, keep, found))
        return keep if keep is not None else [True] * len(rows)


def parse(query: Mapping[str, str] | Any, columns: Sequence[Mapping[str, Any]]) -> Selection:
    """Compile the filters and ``q`` of a request; BadRequest names any mistake."""
    names = [c["name"] for c in columns]
    kinds = {c["name"]: c["type"] for c in columns}
    positions = {name: i for i, name in enumerate(names)}
    filters = []
    for key, raw in pairs(query):
        if key in RESERVED:
            continue
        column, op = _split(key, raw, positions)
        filters.append(_compile(column, positions[column], kinds[column], op, raw))
    search = query.get("q") or None
    text = [positions[c["name"]] for c in columns if c["type"] == "string"]
    return Selection(filters, search, text)


def pairs(query: Any) -> Iterable[tuple[str, str]]:
    """Every (name, value) of a request's parameters, a repeated filter's every value (a
    bottle FormsDict's ``allitems``)."""
    if hasattr(query, "allitems"):
        return list(query.allitems())
    return list(query.items())


def _split(key: str, raw: str, positions: Mapping[str, int]) -> tuple[str, str]:
    """A filter parameter's column and operator; BadRequest naming the filter if unknown."""
    if key in positions:
        return key, "exact"
    column, sep, op = key.rpartition("__")
    shown = f"{key}={raw!r}"
    if not sep or column not in positions:
        name = column if sep and op in OPERATORS else key
        raise BadRequest(
            f"unknown column {name!r} in filter {shown}",
            code="unknown_column",
            column=name,
            value=raw,
        )
    if op not in OPERATORS:
        raise BadRequest(
            f"unknown operator {op!r} in filter {shown}; use one of {', '.join(sorted(OPERATORS))}",
            code="unknown_operator",
            column=column,
            value=raw,
        )
    return column, op


def _compile(column: str, position: int, kind: str, op: str, raw: str) -> Filter:
    def make(test: Test, needles: tuple[bytes, ...] = (), folded: bool = False) -> Filter:
        return Filter(column, position, op, raw, test, needles, folded)

    if op in ("isnull", "notnull"):
        wanted = _flag(column, op, raw)
        if op == "notnull":
            wanted = not wanted
        return make((lambda v: v is None) if wanted else (lambda v: v is not None))
    if op in TEXT_OPERATORS:
        if kind not in TEXT_TYPES:
            raise BadRequest(
                f"{op} needs a text column; {column!r} is {kind}",
                code="bad_value",
                column=column,
                value=raw,
            )
        return _text_filter(column, position, op, raw)
    if op in ("in", "notin"):
        values = [_value(column, kind, part) for part in raw.split(",")]
        keys = {_key(kind, v) for v in values}
        listed = tuple(keys)
        if op == "in":
            needles = tuple(_needle(kind, v) for v in values)
            test: Test = lambda v: v is not None and _key(kind, v) in keys  # noqa: E731
            return Filter(
                column, position, op, raw, test, needles if all(needles) else (), values=listed
            )
        test = lambda v: v is not None and _key(kind, v) not in keys  # noqa: E731
        return Filter(column, position, op, raw, test, (), values=listed)
    value = _value(column, kind, raw)
    target, needle, compare = _key(kind, value), _needle(kind, value), _COMPARE[op]
    test = _ordered(kind, compare, target)
    # In C over a column: equality is false for a null and an ordered comparison raises on one
    # (then the null-aware test runs); "not" would be true for a null. Datetimes compare by
    # their moment, in Python.
    fast = compare if kind != "datetime" and op != "not" else None
    return Filter(
        column,
        position,
        op,
        raw,
        test,
        (needle,) if op == "exact" and needle else (),
        compare=fast,
        target=target,
    )


def _ordered(kind: str, compare: Callable[[Any, Any], bool], target: Any) -> Test:
    if kind == "datetime":
        return lambda v: v is not None and compare(_moment(v), target)
    return lambda v: v is not None and compare(v, target)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "not": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _text_filter(column: str, position: int, op: str, raw: str) -> Filter:
    escaped = _json_text(raw)
    if not raw:  # every text contains the empty string: no bytes to look for
        return Filter(column, position, op, raw, lambda v: v is not None, ())
    if op == "contains":
        test: Test = lambda v: v is not None and raw in v  # noqa: E731
        return Filter(column, position, op, raw, test, (escaped,))
    if op == "icontains":
        lowered = raw.lower()
        test = lambda v: v is not None and lowered in v.lower()  # noqa: E731
        return Filter(column, position, op, raw, test, (_json_text(lowered),), folded=True)
    if op == "startswith":
        test = lambda v: v is not None and v.startswith(raw)  # noqa: E731
        return Filter(column, position, op, raw, test, (b'"' + escaped,))
    test = lambda v: v is not None and v.endswith(raw)  # noqa: E731
    return Filter(column, position, op, raw, test, (escaped + b'"',))


def _value(column: str, kind: str, raw: str) -> Any:
    """A filter's value read as the column's type; BadRequest naming both if it is not."""
    try:
        if kind in ("integer", "number"):
            number = float(raw) if kind == "number" else _integer_or_float(raw)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return number
        if kind == "boolean":
            return {"true": True, "false": False, "1": True, "0": False}[raw.lower()]
        if kind in ("date", "datetime"):
            # The null markers ("", NA, null, ...) read as None: not a date to compare with.
            moment = coerce.convert(kind, [raw])[0][0]
            if moment is not None:
                return moment
        elif kind in ("string", "null"):
            return raw
    except (ValueError, KeyError, coerce.Mismatch):
        pass
    raise BadRequest(
        f"filter on {column!r}: {raw!r} is not a {kind} value",
        code="bad_value",
        column=column,
        value=raw,
    )


def _integer_or_float(raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        return float(raw)


def _key(kind: str, value: Any) -> Any:
    """What a value compares as: datetimes by their moment, whatever their precision."""
    return _moment(value) if kind == "datetime" else value


def _needle(kind: str, value: Any) -> bytes:
    """Bytes a stored line holds if it has this value (empty where there are none to rely on)."""
    if kind in ("string", "date"):
        return orjson.dumps(value)
    if kind == "boolean":
        return b"true" if value else b"false"
    if kind == "integer" and isinstance(value, int):
        return str(value).encode()
    if kind == "number" and value != 0:  # 0.0 equals -0.0, which is stored as written
        return orjson.dumps(float(value))
    return b""


def _json_text(text: str) -> bytes:
    """How text appears inside a stored JSON string: escaped, without quotes."""
    return orjson.dumps(text)[1:-1]


def _flag(column: str, op: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", ""):
        return True
    if value in ("0", "false"):
        return False
    raise BadRequest(
        f"{column}__{op} takes 1 or 0, not {raw!r}", code="bad_value", column=column, value=raw
    )
