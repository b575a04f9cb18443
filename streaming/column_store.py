"""The columnar shape of a dataset: its format, and the writer the sync feeds a batch at a time.

Two files beside the rows (``streaming.store`` draws the whole dataset directory)::

    columns.json   {"format": 1, "rows": N, "blocks": [[first row, rows], ...],
                    "columns": [COLUMN, ...]}            (header order)
    columns.bin    every block's segment of every coded column, then the dictionaries

Rows are cut into blocks of up to BLOCK_ROWS rows, the same cut for every column (fewer when
the columns' buffers would pass BUFFER_BYTES: a wide table). A COLUMN is ``{"type", "coded",
"blocks": [SEGMENT, ...]}``, plus ``"dictionary": [offset, length, crc32]`` for a string
column and ``"zulu": true`` for a datetime column whose values carry "Z". A string column with
more than DICTIONARY_MAX distinct values or DICTIONARY_BYTES of text is ``"coded": false`` and
has no segments: the row scan answers for it. A SEGMENT is ``[offset, length, crc32, nulls,
low, high, width, scale]``, its bytes at ``offset`` in columns.bin being:

- ``width * rows`` bytes of values (none when width is 0 or every value is null);
- then, if some but not all values are null, the null bitmap: bit ``i % 8`` of byte ``i // 8``
  set when row ``i`` of the block is null.

Values, little-endian, by type:

- integer, boolean, date, datetime: as integers (booleans 0/1, dates as ``date.toordinal``,
  datetimes as microseconds since 1970-01-01 of their wall-clock text, "Z" dropped, as the row
  path compares them) stored frame-of-reference: ``(value - low) // scale``, unsigned, in the
  fewest bytes (width 0, 1, 2, 4 or 8) that hold ``(high - low) // scale``. ``scale`` is the
  gcd of the block's differences: hourly datetimes take 2 bytes a value, not 8.
- number: IEEE float64 (width 8, scale 1).
- string: dictionary codes, 1 byte in a block whose codes are all below 256, else 2; ``low``
  and ``high`` are null. The dictionary is a JSON array of the values in code order.

``low``/``high``/``nulls`` let a filter skip a block unread; ``crc32`` lets a reader refuse a
damaged segment rather than answer from it. Rows at null positions hold ``low`` (code 0).

The writer keeps one block of each column (compact arrays, never Python lists) and each
dictionary: its memory does not grow with the file.
"""

from __future__ import annotations

import math
import os
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import compress, islice, repeat
from operator import floordiv, is_, is_not, mul, sub
from pathlib import Path
from typing import Any, BinaryIO

import orjson

FORMAT = 1
BLOCK_ROWS = 65536
BUFFER_BYTES = 8 << 20  # the block's buffers of all columns; a wider table cuts blocks sooner
DICTIONARY_MAX = 65536  # distinct values a coded column may hold (2-byte codes)
DICTIONARY_BYTES = 1 << 20  # and characters of text: beyond, not worth coding (free text)
META_NAME = "columns.json"
DATA_NAME = "columns.bin"

INTEGRAL = frozenset(["integer", "boolean", "date", "datetime"])  # stored as integers
EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = EPOCH.replace(tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Dates and datetimes seen, text -> integer, kept up to this many per column (a date column
# repeats a few thousand values; unique timestamps are converted as they come, not kept).
CACHE_MAX = 16384
_WIDTHS = ((0, ""), (1, "B"), (2, "H"), (4, "I"), (8, "Q"))
TYPECODES = dict(_WIDTHS)
_BIG = sys.byteorder == "big"
# Buffers start narrow and widen as values need (a column of small integers buffers 1 byte a
# value, not 8).
_BUFFER_CODES = (("b", 1 << 7), ("h", 1 << 15), ("i", 1 << 31), ("q", 1 << 63))

# A byte of the bitmap <-> the eight 0/1 bytes it stands for, converted by map() in C.
_EIGHTS = [bytes((b >> i) & 1 for i in range(8)) for b in range(256)]
_PACK = {int.from_bytes(eight, sys.byteorder): b for b, eight in enumerate(_EIGHTS)}


def pack_bits(flags: bytes) -> bytes:
    """0/1 bytes, one per row, as a bitmap (row i is bit i % 8 of byte i // 8)."""
    padded = flags + bytes(-len(flags) % 8)
    return bytes(map(_PACK.__getitem__, array("Q", padded)))


def unpack_bits(bits: bytes, rows: int) -> bytes:
    """A bitmap as 0/1 bytes, one per row."""
    return b"".join(map(_EIGHTS.__getitem__, bits))[:rows]


def width_of(span: int) -> int:
    """The fewest bytes (0, 1, 2, 4, 8) that hold unsigned integers up to ``span``."""
    for width, _ in _WIDTHS:
        if span < 1 << (8 * width):
            return width
    raise ValueError(f"span {span} beyond 64 bits")


def date_number(text: str) -> int:
    return date.fromisoformat(text).toordinal()


def datetime_number(text: str) -> int:
    """Microseconds since 1970 of a canonical datetime's wall clock ("Z" dropped)."""
    return (datetime.fromisoformat(text.rstrip("Z")) - EPOCH) // MICROSECOND


def date_numbers(texts: Iterable[str]) -> Iterator[int]:
    """``date_number`` of each text, in C loops (no Python call per value)."""
    return map(date.toordinal, map(date.fromisoformat, texts))


def datetime_numbers(texts: Iterable[str], zulu: bool) -> Iterator[int]:
    """``datetime_number`` of each text (all with "Z" if ``zulu``, else none), in C loops:
    fromisoformat reads "Z" as UTC, and an aware moment minus the aware epoch is the same
    number as its wall clock minus the naive one."""
    epoch = EPOCH_UTC if zulu else EPOCH
    moments = map(datetime.fromisoformat, texts)
    return map(floordiv, map(sub, moments, repeat(epoch)), repeat(MICROSECOND))


def date_text(number: int) -> str:
    return date.fromordinal(number).isoformat()


def datetime_text(number: int, zulu: bool) -> str:
    text = (EPOCH + timedelta(microseconds=number)).isoformat()
    return text + "Z" if zulu else text


class ColumnWriter:
    """The columns of one sync pass: ``add`` each batch's typed columns, then ``close``.

    >>> writer = ColumnWriter(out_dir, 2)  # doctest: +SKIP
    >>> writer.add([[1, None], ["a", "b"]], ["integer", "string"])  # doctest: +SKIP
    >>> writer.close()  # doctest: +SKIP
    """

    def __init__(self, out_dir: Path, width: int) -> None:
        self.out_dir = out_dir
        self._data: BinaryIO = open(out_dir / DATA_NAME, "wb")
        self._columns = [_Column() for _ in range(width)]
        self._blocks: list[list[int]] = []
        self._rows = 0  # rows in finished blocks
        self._pending = 0  # rows in the block being filled
        self._position = 0

    @classmethod
    def resume(
        cls,
        out_dir: Path,
        described: dict[str, Any],
        kinds: Sequence[str],
        keep: int,
        dictionaries: Sequence[list[str]],
    ) -> ColumnWriter:
        """A writer that goes on after the first ``keep`` blocks of the columns ``described``
        (a columns.json) in ``out_dir``'s columns.bin, which it truncates to where they end:
        an append (``streaming.append``). ``kinds`` are the columns' types now (a column of
        nulls alone may have taken one); ``dictionaries`` the string columns' words, in code
        order, which the new blocks' codes go on from."""
        writer = cls.__new__(cls)
        writer.out_dir = out_dir
        end = extent(described)
        writer._data = open(out_dir / DATA_NAME, "r+b")
        writer._data.truncate(end)  # what a crashed append left after the end, if anything
        writer._data.seek(end)
        writer._position = end
        writer._blocks = [list(b) for b in described["blocks"][:keep]]
        writer._rows = sum(rows for _, rows in writer._blocks)
        writer._pending = 0
        writer._columns = [
            _Column.resumed(info, kind, keep, words)
            for info, kind, words in zip(described["columns"], kinds, dictionaries)
        ]
        return writer

    def add(
        self,
        columns: Sequence[Sequence[Any]],
        kinds: Sequence[str | None],
        nulls: Sequence[int] | None = None,
    ) -> None:
        """A batch: each column's typed values (None for null), and each column's type; and
        each column's count of nulls if the caller knows it (else it is counted)."""
        rows = len(columns[0]) if columns else 0
        start = 0
        counts = nulls if nulls is not None else repeat(None)
        while start < rows:
            take = min(rows - start, BLOCK_ROWS - self._pending)
            for column, values, kind, count in zip(self._columns, columns, kinds, counts):
                whole = take == rows
                part = values if whole else values[start : start + take]
                column.add(part, kind or "null", self._pending, count if whole else None)
            self._pending += take
            start += take
            buffered = sum(c.buffered() for c in self._columns)
            if self._pending >= BLOCK_ROWS or buffered >= BUFFER_BYTES:
                self._end_block()

    def _end_block(self) -> None:
        for column in self._columns:
            segment, entry = column.end_block(self._pending)
            if entry is not None:
                crc = zlib.crc32(segment)
                self._data.write(segment)
                column.segments.append([self._position, len(segment), crc, *entry])
                self._position += len(segment)
        self._blocks.append([self._rows, self._pending])
        self._rows += self._pending
        self._pending = 0

    def close(self) -> None:
        """Write the last block, the dictionaries and columns.json; make them durable."""
        if self._pending:
            self._end_block()
        described = []
        for column in self._columns:
            info: dict[str, Any] = {"type": column.kind, "coded": column.coded}
            if column.kind == "string" and column.coded:
                text = orjson.dumps(list(column.dictionary))
                info["dictionary"] = [self._position, len(text), zlib.crc32(text)]
                self._data.write(text)
                self._position += len(text)
            if column.kind == "datetime":
                info["zulu"] = column.zulu
            info["blocks"] = column.segments if column.coded else []
            described.append(info)
        meta = {"format": FORMAT, "rows": self._rows, "blocks": self._blocks, "columns": described}
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        with open(self.out_dir / META_NAME, "wb") as f:
            f.write(orjson.dumps(meta))
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        self._data.close()


def extent(described: dict[str, Any]) -> int:
    """Where the bytes a columns.json describes end in columns.bin (an appended version's
    columns.bin goes on after them)."""
    end = 0
    for column in described["columns"]:
        for entry in column["blocks"]:
            end = max(end, entry[0] + entry[1])
        if "dictionary" in column:
            end = max(end, sum(column["dictionary"][:2]))
    return end


class _Column:
    """One column's block being filled, as integers, floats or codes, and its null flags."""

    def __init__(self) -> None:
        self.kind = "null"
        self.coded = True
        self.zulu = False
        self.segments: list[list[Any]] = []
        self.dictionary: dict[str, int] = {}
        self._text = 0  # characters in the dictionary
        self._cache: dict[Any, int] = {}  # date and datetime text -> its integer
        self._values: array[Any] | None = None  # None while every value so far is null
        # 0/1 per row of the block, made when the block's first null comes (most columns have
        # none: 64 KiB a column saved, a wide table's megabyte)
        self._nulls: bytearray | None = None
        self._rows = 0  # rows in the block
        self._null_count = 0
        self._extremes: tuple[Any, Any] | None = None  # the block's least and greatest value

    @classmethod
    def resumed(cls, info: dict[str, Any], kind: str, keep: int, words: list[str]) -> _Column:
        """A column going on after its first ``keep`` blocks (``ColumnWriter.resume``)."""
        column = cls()
        column.kind = kind
        column.coded = bool(info["coded"])
        column.zulu = bool(info.get("zulu"))
        column.segments = [list(entry) for entry in info["blocks"][:keep]]
        column.dictionary = {word: code for code, word in enumerate(words)}
        column._text = sum(map(len, words))
        return column

    def buffered(self) -> int:
        values = self._values
        # A byte a row for the null flags whether or not they are made: blocks are cut where
        # they always were.
        return self._rows + (values.itemsize * len(values) if values is not None else 0)

    def add(self, values: Sequence[Any], kind: str, pending: int, nulls: int | None) -> None:
        # "None in" is a scan by identity: measured 1.5x cheaper than mapping is_ over a batch
        # without nulls, which most are; a count of nulls from the caller saves even that.
        if nulls == 0 or (nulls is None and None not in values):
            flags, nulls = b"", 0
            if self._nulls is not None:
                self._nulls += bytes(len(values))
        else:
            flags = bytes(map(is_, values, repeat(None)))
            nulls = flags.count(1)
            if self._nulls is None:
                self._nulls = bytearray(self._rows)
            self._nulls += flags
        self._rows += len(values)
        self._null_count += nulls
        if not self.coded:
            return
        if nulls == len(values) and self._values is None:
            self.kind = kind
            return
        if self._values is None:  # the first values of the block: nulls before them hold 0
            self.kind = kind
            self._values = array("d", bytes(8 * pending)) if kind == "number" else array("b")
            if kind != "number":
                self._values.frombytes(bytes(pending))
        numbers = self._numbers(values, kind, nulls)
        if numbers is None:  # a string column not worth coding
            self.coded, self._values = False, None
            self.dictionary, self._cache = {}, {}
            return
        if nulls == len(values):  # nothing to widen or to bound: the nulls' zeros only
            self._values += array(self._values.typecode, numbers)
            return
        present = list(compress(numbers, flags.translate(_FLIP))) if nulls else numbers
        low, high = min(present), max(present)
        if self._extremes is not None:
            low, high = min(low, self._extremes[0]), max(high, self._extremes[1])
        self._extremes = (low, high)
        if kind != "number":
            self._widen(low, high)
        # An array made from the list and appended whole: extend() with a list grows the
        # array value by value (measured 2x slower).
        self._values += array(self._values.typecode, numbers)

    def _numbers(self, values: Sequence[Any], kind: str, nulls: int) -> list[Any] | None:
        """The batch as integers (floats for numbers, codes for strings), 0 for nulls."""
        if kind == "number":
            return list(map({None: 0.0}.get, values, values)) if nulls else list(values)
        if kind in ("integer", "boolean"):
            return list(map({None: 0}.get, values, values)) if nulls else list(values)
        if kind == "string":
            return self._codes(values)
        if kind == "datetime" and nulls < len(values):
            self.zulu = next(v for v in values if v is not None).endswith("Z")
        cache = self._cache
        fresh = set(values).difference(cache)
        fresh.discard(None)
        if len(fresh) > CACHE_MAX // 4 or 2 * len(fresh) > len(values):
            # Mostly values not seen before (timestamps): convert the batch as it is, nulls
            # as the epoch's text (0), keeping nothing.
            if kind == "date":
                return self._dates_uncached(values, nulls)
            zero = "1970-01-01T00:00:00Z" if self.zulu else "1970-01-01T00:00:00"
            texts: Iterable[str] = map({None: zero}.get, values, values) if nulls else values
            return list(datetime_numbers(texts, self.zulu))
        if len(cache) + len(fresh) > CACHE_MAX:
            cache.clear()
            fresh = set(values)
            fresh.discard(None)
        if kind == "date":
            cache.update(zip(fresh, date_numbers(fresh)))
        else:
            cache.update(zip(fresh, datetime_numbers(fresh, self.zulu)))
        cache[None] = 0
        return list(map(cache.__getitem__, values))

    def _dates_uncached(self, values: Sequence[Any], nulls: int) -> list[int]:
        """A batch of mostly new dates as ordinals, 0 for nulls."""
        if not nulls:
            return list(date_numbers(values))
        texts: Iterable[str] = map({None: "0001-01-01"}.get, values, values)  # 1, made 0 below
        return list(map(mul, date_numbers(texts), map(is_not, values, repeat(None))))

    def _codes(self, values: Sequence[Any]) -> list[int] | None:
        dictionary = self.dictionary
        fresh = set(values).difference(dictionary)
        fresh.discard(None)
        if fresh:
            self._text += sum(map(len, fresh))
            if len(dictionary) + len(fresh) > DICTIONARY_MAX or self._text > DICTIONARY_BYTES:
                return None
            dictionary.update(zip(fresh, range(len(dictionary), len(dictionary) + len(fresh))))
        return list(map(dictionary.get, values, repeat(0)))

    def _widen(self, low: int, high: int) -> None:
        values = self._values
        assert values is not None
        if values.typecode == "d":
            return
        code = next(c for c, limit in _BUFFER_CODES if -limit <= low and high < limit)
        if "bhiq".index(code) > "bhiq".index(values.typecode):
            self._values = array(code, values)

    def end_block(self, rows: int) -> tuple[bytes, list[Any] | None]:
        """The block's segment and its entry (after offset, length, crc), or None if the column
        is not coded; the column starts a new block."""
        values, nulls = self._values, self._null_count
        flags = bytes(self._nulls) if self._nulls is not None else b""
        extremes = self._extremes
        self._values, self._nulls, self._null_count, self._rows = None, None, 0, 0
        self._extremes = None
        if not self.coded:
            return b"", None
        if values is None or extremes is None or nulls == rows:
            return b"", [rows, None, None, 0, 1]
        bitmap = pack_bits(flags) if nulls else b""
        if self.kind == "number":
            body = _little(array("d", values))
            return body + bitmap, [nulls, extremes[0], extremes[1], 8, 1]
        if self.kind == "string":
            width = 1 if max(values) < 256 else 2
            body = _little(array("B" if width == 1 else "H", values))
            return body + bitmap, [nulls, None, None, width, 1]
        return _integers(values, flags, nulls, bitmap, extremes)


_FLIP = bytes([1, 0]) + bytes(254)  # translate table: 0/1 null flags -> 1/0 present flags


def _integers(
    values: array[Any], flags: bytes, nulls: int, bitmap: bytes, extremes: tuple[int, int]
) -> tuple[bytes, list[Any]]:
    """A block of integers, frame-of-reference: (value - low) // scale in the fewest bytes.

    Worked CHUNK values at a time (two passes: the gcd, then the offsets), never as a list
    of the block's differences: that list (a Python integer a row, 2.5 MiB a block) was the
    second process's peak, once per column per block."""
    present = flags.translate(_FLIP)
    low, high = extremes
    if low == high:
        return bitmap, [nulls, low, high, 0, 1]
    scale = 0
    for chunk in _differences(values, low, present if nulls else None):
        scale = math.gcd(scale, *chunk)
        if scale == 1:  # most blocks: known from their first chunk
            break
    width = width_of((high - low) // scale)
    offsets = array(TYPECODES[width])
    for chunk in _differences(values, low, present if nulls else None):
        offsets.fromlist(list(map(floordiv, chunk, repeat(scale))) if scale > 1 else chunk)
    body = _little(offsets)
    return body + bitmap, [nulls, low, high, width, scale]


CHUNK = 4096


def _differences(values: array[Any], low: int, present: bytes | None) -> Iterator[list[int]]:
    """``value - low`` of each value (0 where ``present`` says null: a null's stored 0 would
    fall outside [low, high]), CHUNK at a time."""
    differences: Iterator[int] = map(sub, values, repeat(low))
    if present is not None:
        differences = map(mul, differences, present)
    while chunk := list(islice(differences, CHUNK)):
        yield chunk


def _little(values: array[Any]) -> bytes:
    if _BIG:
        values.byteswap()
    return values.tobytes()
