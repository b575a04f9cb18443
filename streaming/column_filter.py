"""Filters answered from the columns: a ``streaming.filter.Selection`` as a row mask per block.

The same meaning as the row path's compiled filters (``Filter.test``), worked out differently:

- integer, boolean, date and datetime columns compare their stored offsets (``(value - low) //
  scale``) with the filter's value turned into an offset. An offset of width w is w byte
  planes (``values[i::w]``); each plane is compared with one byte of the target by
  ``bytes.translate`` through a 256-byte table, and the planes combine as a number's digits do
  (greater = greater in the high plane, or equal there and greater below), from the top plane
  down until no row is tied. No Python runs per row, and a block whose low/high rule it in or
  out is not read.
- number columns compare ranges the same way, on their float64 bits (``floats_above``) in a
  block whose values share one sign; other operators, and a block of both signs, compare the
  floats with ``map(operator.gt, ...)`` into bytes, in C.
- coded string columns test each distinct value of the dictionary once, with the row path's own
  ``Filter.test`` (so equality, ``in``, ranges and text operators agree by construction), and
  translate the block's codes through the answers.
- every mask is ANDed with the rows that are not null: null matches only ``isnull``.

What the columns cannot answer (text operators on dates, any filter or ``q`` that needs an
uncoded string column) makes ``ColumnSelection.possible`` false; the row scan answers then.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import lru_cache, reduce
from itertools import repeat
from typing import Any

from streaming import column_store as fmt
from streaming.column_read import ColumnReader, Segment, ones, to_mask
from streaming.filter import TEXT_OPERATORS, Filter, Selection

Mask = int
_ORDERED = ("exact", "not", "gt", "gte", "lt", "lte")


@lru_cache(maxsize=2048)
def _table(op: Callable[[int, int], bool], byte: int) -> bytes:
    """A translate table: byte b becomes 1 where ``op(b, byte)``, else 0."""
    return bytes(int(op(b, byte)) for b in range(256))


def _plane(plane: bytes, op: Callable[[int, int], bool], byte: int) -> Mask:
    return to_mask(plane.translate(_table(op, byte)))


def offsets_equal(values: bytes, width: int, target: int) -> Mask:
    """Rows whose unsigned offset (``width`` bytes, little-endian) equals ``target``."""
    digits = target.to_bytes(width, "little")
    masks = (_plane(values[i::width], operator.eq, digits[i]) for i in range(width))
    return reduce(operator.and_, masks)


def offsets_above(values: bytes, width: int, target: int, strict: bool) -> Mask:
    """Rows whose unsigned offset is greater than ``target`` (or equal, unless ``strict``).

    From the most significant plane down: a row greater there is kept, a row equal there is
    "tied" and decided by the planes below. Once no row is tied the lower planes are not read
    (a float64 range, whose top two bytes decide most rows, reads two or three of eight)."""
    digits = target.to_bytes(width, "little")
    last = operator.gt if strict else operator.ge
    if width == 1:
        return _plane(values, last, digits[0])
    top = values[width - 1 :: width]
    found, tied = _plane(top, operator.gt, digits[-1]), _plane(top, operator.eq, digits[-1])
    for i in range(width - 2, -1, -1):
        if not tied:
            break
        plane = values[i::width]
        if i:
            found |= tied & _plane(plane, operator.gt, digits[i])
            tied &= _plane(plane, operator.eq, digits[i])
        else:
            found |= tied & _plane(plane, last, digits[0])
    return found


def _integral(value: Any) -> int | Fraction:
    """A filter's number, exact: an integer column compares 2.5 as 2.5, not as 2 or 3."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else Fraction(value)
    return int(value)


class _Test:
    """One filter over one column, block by block."""

    def __init__(self, position: int) -> None:
        self.position = position

    def mask(self, segment: Segment) -> Mask:
        raise NotImplementedError


class _Nulls(_Test):
    def __init__(self, position: int, wanted: bool) -> None:
        super().__init__(position)
        self.wanted = wanted

    def mask(self, segment: Segment) -> Mask:
        present = segment.present()
        return ones(segment.rows) ^ present if self.wanted else present


class _Integers(_Test):
    """exact, not, gt, gte, lt, lte, in, notin on a column stored as integers."""

    def __init__(self, position: int, op: str, values: list[int | Fraction]) -> None:
        super().__init__(position)
        self.op = op
        self.values = values

    def mask(self, segment: Segment) -> Mask:
        present = segment.present()
        if self.op in ("in", "notin"):
            hits = reduce(operator.or_, (self._equal(segment, v) for v in self.values), 0)
            return hits if self.op == "in" else present ^ hits
        value = self.values[0]
        if self.op in ("exact", "not"):
            hits = self._equal(segment, value)
            return hits if self.op == "exact" else present ^ hits
        if self.op in ("gt", "lte"):  # value > v, and its complement
            above = self._above(segment, value, strict=True)
        else:
            above = self._above(segment, value, strict=False)
        return above if self.op in ("gt", "gte") else present ^ above

    @staticmethod
    def _equal(segment: Segment, value: int | Fraction) -> Mask:
        low, high, scale = segment.low, segment.high, segment.scale
        if not low <= value <= high or (value - low) % scale:
            return 0
        if segment.width == 0:
            return segment.present()
        offset = int((value - low) // scale)
        return offsets_equal(segment.values, segment.width, offset) & segment.present()

    @staticmethod
    def _above(segment: Segment, value: int | Fraction, strict: bool) -> Mask:
        """Rows above ``value`` (or at it, unless strict), nulls excluded."""
        low, high, scale = segment.low, segment.high, segment.scale
        if value < low or (value == low and not strict):
            return segment.present()
        if value > high or (value == high and strict):
            return 0
        if strict:  # value > v  <=>  offset > floor((v - low) / scale)
            target, strict_offset = int((value - low) // scale), True
        else:  # value >= v  <=>  offset >= ceil((v - low) / scale)
            target, strict_offset = int(-((low - value) // scale)), False
        found = offsets_above(segment.values, segment.width, target, strict_offset)
        return found & segment.present()


class _Floats(_Test):
    """The same operators on a number column: its floats compared in C."""

    _OPS = {"exact": operator.eq, "not": operator.ne, "gt": operator.gt}
    _OPS |= {"gte": operator.ge, "lt": operator.lt, "lte": operator.le}

    def __init__(self, position: int, op: str, values: list[Any]) -> None:
        super().__init__(position)
        self.op = op
        self.values = values
        self.listed = frozenset(values)

    def mask(self, segment: Segment) -> Mask:
        present = segment.present()
        value, low, high = self.values[0], segment.low, segment.high
        op = self.op
        if op in ("exact", "in") and all(not low <= v <= high for v in self.values):
            return 0
        if (op == "gt" and value >= high) or (op == "gte" and value > high):
            return 0
        if (op == "lt" and value <= low) or (op == "lte" and value < low):
            return 0
        if (op == "gt" and value < low) or (op == "gte" and value <= low):
            return present
        if (op == "lt" and value > high) or (op == "lte" and value >= high):
            return present
        if op in ("gt", "lte", "gte", "lt") and isinstance(value, float):
            above = floats_above(segment, value, strict=op in ("gt", "lte"))
            if above is not None:
                above &= present
                return above if op in ("gt", "gte") else present ^ above
        floats: Any = segment.stored()
        if op in ("in", "notin"):
            flags = bytes(map(self.listed.__contains__, floats))
            hits = to_mask(flags) & present
            return hits if op == "in" else present ^ hits
        return to_mask(bytes(map(self._OPS[op], floats, repeat(value)))) & present


_SIGN_FLIP = bytes(b ^ 0x80 for b in range(256))  # turns a byte's top bit over


def floats_above(segment: Segment, value: float, strict: bool) -> Mask | None:
    """Rows of a number segment above ``value`` (or at it, unless ``strict``), nulls not
    excluded, by the byte planes of their IEEE 754 bits; None when the block holds both signs
    (then ``map`` compares the floats).

    A float64 without its sign bit orders as its bits do read as an unsigned integer; with it,
    against them (a greater magnitude is a smaller value). So a block whose stored values all
    share one sign is compared as integer offsets are, from the top plane down
    (``offsets_above``), after -0.0 is taken as 0.0 (its sign bit is set: it is only ever met
    in a block of sign bits). ``bytes.isascii`` tells a plane of sign bytes all below 0x80."""
    rows, values = segment.rows, segment.values
    signs = values[7::8]
    value += 0.0  # -0.0 as 0.0
    if segment.low > 0 or signs.isascii():  # no sign bit among the values (nulls: masked)
        if value < 0:
            return ones(rows)
        return offsets_above(values, 8, _bits(value), strict)
    if segment.high < 0 or signs.translate(_SIGN_FLIP).isascii():  # every sign bit set
        if value > 0 or (value == 0 and strict):
            return 0
        # x > v <=> |x| < |v| <=> not bits(x) >= bits(v); x >= v: not bits(x) > bits(v); a
        # v of 0 (x >= 0: the -0.0s) as -0.0, whose bits are the least with the sign bit
        return ones(rows) ^ offsets_above(values, 8, _bits(-abs(value)), not strict)
    return None


def _bits(value: float) -> int:
    """A float64's IEEE 754 bits as an unsigned integer."""
    return int.from_bytes(struct.pack("<d", value), "little")


class _Codes(_Test):
    """Any filter on a coded string column, through its answer for each dictionary value."""

    def __init__(self, position: int, answers: bytes) -> None:
        super().__init__(position)
        self.answers = answers  # one 0/1 byte per code
        self.table = (answers + bytes(256))[:256]

    def mask(self, segment: Segment) -> Mask:
        if segment.width == 1:
            flags = segment.values.translate(self.table)
        else:
            flags = bytes(map(self.answers.__getitem__, segment.stored()))
        return to_mask(flags) & segment.present()


class _Search(_Test):
    """``q``: any of the string columns contains the text, in any case."""

    def __init__(self, tests: list[_Codes]) -> None:
        super().__init__(-1)
        self.tests = tests

    def masks(self, reader: ColumnReader, block: int, rows: int) -> Mask:
        found = 0
        for test in self.tests:
            segment = reader.segment(test.position, block)
            if not segment.all_null:
                found |= test.mask(segment)
        return found


class ColumnSelection:
    """A query compiled against one dataset's columns. ``possible`` says whether the columns can
    answer it; ``masks`` gives each block's mask of matching rows.

    >>> selection = ColumnSelection(reader, query)  # doctest: +SKIP
    >>> selection.possible and sum(m.bit_count() for _, m in selection.masks())  # doctest: +SKIP
    """

    def __init__(self, reader: ColumnReader, query: Selection) -> None:
        self.reader = reader
        self.tests: list[_Test] = []
        self.search: _Search | None = None
        self.possible = True
        for f in query.filters:
            test = self._compile(f)
            if test is None:
                self.possible = False
                return
            self.tests.append(test)
        if query.search is not None:
            needle = query.search
            searched = []
            for position in query.text_positions:
                if not reader.coded(position):
                    self.possible = False
                    return
                values = reader.dictionary(position)
                answers = bytes(needle in v.lower() for v in values)
                searched.append(_Codes(position, answers))
            self.search = _Search(searched)

    def _compile(self, f: Filter) -> _Test | None:
        position, reader = f.position, self.reader
        kind = reader.kinds[position]
        if not reader.coded(position):
            return None
        if f.op in ("isnull", "notnull"):
            return _Nulls(position, bool(f.test(None)))
        if kind == "null":  # every block is all null: only isnull matches, as _Nulls does
            return _Codes(position, b"")
        if kind == "string":
            return _Codes(position, bytes(map(f.test, reader.dictionary(position))))
        if f.op in TEXT_OPERATORS:
            return None  # dates and datetimes as text: the row scan
        listed = list(f.values) if f.op in ("in", "notin") else [f.target]
        if kind == "number":
            return _Floats(position, f.op, listed)
        return _Integers(position, f.op, [_integral(_number(kind, v)) for v in listed])

    def masks(self, start: int = 0) -> Iterator[tuple[int, Mask]]:
        """``(block, mask)`` for every block, from the one holding row ``start``, with a row
        matching; rows before ``start`` are left out."""
        for block, (first, rows) in enumerate(self.reader.blocks):
            if first + rows <= start:
                continue
            mask = self.mask(block)
            if start > first:
                mask &= ~((1 << (8 * (start - first))) - 1)
            if mask:
                yield block, mask

    def mask(self, block: int) -> Mask:
        """The rows of one block that every filter (and ``q``) keeps."""
        rows = self.reader.blocks[block][1]
        mask = ones(rows)
        for test in self.tests:
            segment = self.reader.segment(test.position, block)
            if segment.all_null and not isinstance(test, _Nulls):
                return 0
            mask &= test.mask(segment)
            if not mask:
                return 0
        if self.search is not None:
            mask &= self.search.masks(self.reader, block, rows)
        return mask


def _number(kind: str, value: Any) -> Any:
    """A filter's value in the stored integers' terms."""
    if kind == "date":
        return fmt.date_number(value)
    if kind == "datetime":
        return fmt.datetime_number(value)  # the filter's moment: wall clock, to the microsecond
    return value
