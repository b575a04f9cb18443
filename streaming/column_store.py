"""The columnar shape of a dataset: its format, and the writer the sync feeds a batch at a time.

Two files beside the rows (``streaming.store`` draws the whole dataset directory)::

    columns.json   {"format": 1, "rows": N, "blocks": [[first row, rows], ...],
                    "columns": [COLUMN, ...]}            (header order)
    columns.bin    every block's segment of every coded column, then the dictionaries

Rows are cut into blocks of up to BLOCK_ROWS rows, the same cut for every column (fewer in a
wide table: a block ends once it would take BUFFER_BYTES counted as a byte a row for its null
flags plus each value in the narrowest of 1, 2, 4 or 8 bytes that holds the block's values so
far, floats 8, in every column; this was once the writer's buffers' size). A COLUMN is
``{"type", "coded", "blocks": [SEGMENT, ...]}``, plus ``"dictionary": [offset, length, crc32]``
for a string column and ``"zulu": true`` for a datetime column whose values carry "Z". A string
column with more than DICTIONARY_MAX distinct values or DICTIONARY_BYTES of text is
``"coded": false`` and has no segments: the row scan answers for it. A SEGMENT is
``[offset, length, crc32, nulls, low, high, width, scale]``, its bytes at ``offset`` in
columns.bin being:

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

The writer holds a batch, not a block. Each batch's values go to a scratch file as they come (one
per writer, in the directory it writes to, with no name: nothing is left behind however the writer
ends), in the fewest bytes that hold that batch, so a block whose values grow is never copied; its
null flags are packed into the block's bitmap as they come (a bit a row). At the block's end its
values are read back CHUNK at a time (integers twice: the gcd, then the offsets) and its segment
written in parts, the crc32 taken part by part. Its memory is a batch's, the bitmaps and the
dictionaries: it grows with neither the file nor the block. The scratch file's pages are the page
cache's (the kernel's, written out or dropped when memory is short), not the process's: neither its
RSS nor its PSS (on a tmpfs they are RAM, as columns.bin's are). A block of the wide bench file
(300,000 rows x 14 columns: timestamps, unicode, quoted text) is 3.4 MB there; kept in memory as
arrays, with its encoding's copies at the block's end, it was the second process's swing of 3 MiB,
and the sync's PSS summed over its two processes went from 36.4 to 31.3 MiB when it moved there
(``bench/sync.py``, quiet machine), flat through the file (the writer's own CPU time, replayed
alone, 0.80 -> 0.74 s).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import compress, repeat
from operator import floordiv, is_, is_not, mul, sub
from pathlib import Path
from typing import Any, BinaryIO

import orjson

FORMAT = 1
BLOCK_ROWS = 65536
BUFFER_BYTES = 8 << 20  # a block's values, counted as above; a wider table cuts blocks sooner
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
# Signed typecodes, narrowest first: a batch of integers is spilled in the first that holds it
# (small integers 1 byte a value, not 8), and a block's cut counts its values in the first that
# holds them all, as its buffers once widened.
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
        self._scratch = _scratch_for(out_dir, self._data)
        self._columns = [_Column(self._scratch) for _ in range(width)]
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
        writer._scratch = _scratch_for(out_dir, writer._data)
        writer._columns = [
            _Column.resumed(writer._scratch, info, kind, keep, words)
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
            parts, entry = column.end_block(self._pending)
            if entry is not None:
                crc, length = 0, 0
                for part in parts:  # never the whole segment at once
                    self._data.write(part)
                    crc = zlib.crc32(part, crc)
                    length += len(part)
                column.segments.append([self._position, length, crc, *entry])
                self._position += length
        self._scratch.clear()
        self._blocks.append([self._rows, self._pending])
        self._rows += self._pending
        self._pending = 0

    def close(self) -> None:
        """Write the last block, the dictionaries and columns.json; make them durable. On
        any failure (a full disk) both files are closed before the error goes on."""
        try:
            self._close()
        except BaseException:
            self.abort()
            raise

    def _close(self) -> None:
        if self._pending:
            self._end_block()
        self._scratch.close()
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
        self._scratch.close()
        self._data.close()


def _scratch_for(out_dir: Path, data: BinaryIO) -> _Scratch:
    """A writer's scratch file; ``data`` (columns.bin, just opened) closed if it cannot be
    made."""
    try:
        return _Scratch(out_dir)
    except BaseException:
        data.close()
        raise


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


class _Scratch:
    """The block being filled, spilled a batch at a time: one temporary file per writer, in
    the directory the column files are written to, with no name (removed by the system when
    it is closed or its process ends, killed or not). Emptied at each block's end."""

    def __init__(self, folder: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=folder)
        self._fd = self._file.fileno()
        self._size = 0

    def put(self, data: bytes | array[Any]) -> int:
        """Write ``data`` after what is there; where it starts."""
        at = self._size
        view = memoryview(data).cast("B")
        while view:
            done = os.pwrite(self._fd, view, self._size)
            view = view[done:]
            self._size += done
        return at

    def get(self, at: int, size: int) -> bytes:
        data = os.pread(self._fd, size, at)
        if len(data) != size:
            raise OSError(f"scratch file: {len(data)} bytes at {at}, not {size}")
        return data

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)
        self._size = 0

    def close(self) -> None:
        self._file.close()

    def pieces(self, runs: Sequence[_Run]) -> Iterator[_Piece]:
        """The runs' values back, at most CHUNK at a time."""
        for at, code, count, present_at in runs:
            size = _ITEMSIZES.get(code, 0)
            for start in range(0, count, CHUNK):
                n = min(CHUNK, count - start)
                if not code:
                    yield None, n, None
                    continue
                values = array(code)
                values.frombytes(self.get(at + start * size, n * size))
                present = self.get(present_at + start, n) if present_at >= 0 else None
                yield values, n, present


# A batch of one column in the scratch file: where its values start, their typecode ("": not
# written, every row null and stored as 0), how many, and where its 0/1 present flags start
# (-1: none null, or not needed: only integers need them).
_Run = tuple[int, str, int, int]
# Up to CHUNK of a block's values read back: the values (None: that many nulls' zeros), how
# many, their present flags (None: none null).
_Piece = tuple["array[Any] | None", int, bytes | None]
_ITEMSIZES = {code: array(code).itemsize for code in "bhiqdBH"}


class _Column:
    """One column's block being filled: its values spilled to the writer's scratch file a
    batch at a time, as integers, floats or codes, and its null bitmap."""

    def __init__(self, scratch: _Scratch) -> None:
        self.kind = "null"
        self.coded = True
        self.zulu = False
        self.segments: list[list[Any]] = []
        self.dictionary: dict[str, int] = {}
        self._scratch = scratch
        self._text = 0  # characters in the dictionary
        self._cache: dict[Any, int] = {}  # date and datetime text -> its integer
        self._runs: list[_Run] | None = None  # None while every value so far is null
        # The bytes a value the block took when it was buffered in memory, narrowest first:
        # blocks are still cut where those buffers reached BUFFER_BYTES.
        self._itemsize = 0
        # The null bitmap, packed as the batches come, from the block's first null on (most
        # columns have none), and the flags of the rows after its last whole byte.
        self._bitmap: bytearray | None = None
        self._tail = b""
        self._rows = 0  # rows in the block
        self._null_count = 0
        self._extremes: tuple[Any, Any] | None = None  # the block's least and greatest value

    @classmethod
    def resumed(
        cls, scratch: _Scratch, info: dict[str, Any], kind: str, keep: int, words: list[str]
    ) -> _Column:
        """A column going on after its first ``keep`` blocks (``ColumnWriter.resume``)."""
        column = cls(scratch)
        column.kind = kind
        column.coded = bool(info["coded"])
        column.zulu = bool(info.get("zulu"))
        column.segments = [list(entry) for entry in info["blocks"][:keep]]
        column.dictionary = {word: code for code, word in enumerate(words)}
        column._text = sum(map(len, words))
        return column

    def buffered(self) -> int:
        """The bytes the block's buffers took when they were kept in memory: a byte a row for
        the null flags, made or not, and the values in the narrowest type that held them."""
        return self._rows + self._itemsize * self._rows

    def add(self, values: Sequence[Any], kind: str, pending: int, nulls: int | None) -> None:
        # "None in" is a scan by identity: measured 1.5x cheaper than mapping is_ over a batch
        # without nulls, which most are; a count of nulls from the caller saves even that.
        if nulls == 0 or (nulls is None and None not in values):
            flags, nulls = b"", 0
        else:
            flags = bytes(map(is_, values, repeat(None)))
            nulls = flags.count(1)
        if self.coded:
            self._flag(flags, len(values))
        self._rows += len(values)
        self._null_count += nulls
        if not self.coded:
            return
        if nulls == len(values):  # nothing to convert, widen or bound: the nulls' zeros only
            if self._runs is None:
                self.kind = kind
            else:
                self._runs.append((0, "", len(values), -1))
            return
        if self._runs is None:  # the first values of the block: nulls before them hold 0
            self.kind = kind
            self._runs = [(0, "", pending, -1)] if pending else []
            self._itemsize = 8 if kind == "number" else 1
        numbers = self._numbers(values, kind, nulls)
        if numbers is None:  # a string column not worth coding
            self.coded, self._runs, self._itemsize = False, None, 0
            self.dictionary, self._cache = {}, {}
            self._bitmap, self._tail = None, b""
            return
        present = flags.translate(_FLIP) if nulls else b""
        kept = list(compress(numbers, present)) if nulls else numbers
        low, high = min(kept), max(kept)
        if self.kind == "number":
            code = "d"
        elif self.kind == "string":
            code = "B" if high < 256 else "H"
        else:  # the fewest bytes for this batch: nothing is copied when a later one needs more
            code = _code(low, high)
        if self._extremes is not None:
            low, high = min(low, self._extremes[0]), max(high, self._extremes[1])
        self._extremes = (low, high)
        if self.kind != "number":
            self._itemsize = max(self._itemsize, _ITEMSIZES[_code(low, high)])
        scratch = self._scratch
        # An array made from the list and written whole: no Python step a value.
        at = scratch.put(array(code, numbers))
        spill = nulls and self.kind in INTEGRAL  # a null's 0 must not count in the gcd
        self._runs.append((at, code, len(values), scratch.put(present) if spill else -1))

    def _flag(self, flags: bytes, rows: int) -> None:
        """The batch's null flags (empty: none null) onto the bitmap."""
        if flags and self._bitmap is None:
            self._bitmap, self._tail = bytearray(self._rows // 8), bytes(self._rows % 8)
        if self._bitmap is None:
            return
        tail = self._tail + (flags or bytes(rows))
        whole = len(tail) - len(tail) % 8
        self._bitmap += pack_bits(tail[:whole])
        self._tail = tail[whole:]

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

    def end_block(self, rows: int) -> tuple[Iterator[bytes], list[Any] | None]:
        """The block's segment, in parts read back from the scratch file as they are taken
        (before the scratch is cleared), and its entry (after offset, length, crc); None if
        the column is not coded. The column starts a new block."""
        runs, nulls, extremes = self._runs, self._null_count, self._extremes
        bitmap = bytes(self._bitmap) + pack_bits(self._tail) if self._bitmap is not None else b""
        self._runs, self._bitmap, self._tail = None, None, b""
        self._null_count, self._rows, self._itemsize, self._extremes = 0, 0, 0, None
        if not self.coded:
            return iter(()), None
        if runs is None or extremes is None or nulls == rows:
            return iter(()), [rows, None, None, 0, 1]

        def pieces() -> Iterator[_Piece]:
            return self._scratch.pieces(runs)

        if self.kind == "number":
            parts = _stored(pieces(), "d", bitmap)
            return parts, [nulls, extremes[0], extremes[1], 8, 1]
        if self.kind == "string":
            width = 1 if extremes[1] < 256 else 2
            return _stored(pieces(), TYPECODES[width], bitmap), [nulls, None, None, width, 1]
        return _integers(pieces, nulls, bitmap, extremes)


_FLIP = bytes([1, 0]) + bytes(254)  # translate table: 0/1 null flags -> 1/0 present flags


def _code(low: int, high: int) -> str:
    """The narrowest signed typecode that holds ``low`` to ``high``."""
    return next(code for code, limit in _BUFFER_CODES if -limit <= low and high < limit)


def _stored(pieces: Iterator[_Piece], code: str, bitmap: bytes) -> Iterator[bytes]:
    """Floats or codes as they are stored, in ``code``, then the bitmap."""
    for values, count, _ in pieces:
        if values is None:
            yield bytes(_ITEMSIZES[code] * count)
        else:
            yield _little(values if values.typecode == code else array(code, values))
    yield bitmap


def _integers(
    pieces: Callable[[], Iterator[_Piece]], nulls: int, bitmap: bytes, extremes: tuple[int, int]
) -> tuple[Iterator[bytes], list[Any]]:
    """A block of integers, frame-of-reference: (value - low) // scale in the fewest bytes.

    Read CHUNK values at a time from the scratch file, twice (the gcd, then the offsets),
    never as the block's values or their differences at once: a list of those (a Python
    integer a row, 2.5 MiB a block) was once the second process's peak."""
    low, high = extremes
    if low == high:
        return iter((bitmap,)), [nulls, low, high, 0, 1]
    scale = 0
    for values, _, present in pieces():
        if values is not None:  # nulls alone change no gcd
            scale = math.gcd(scale, *_differences(values, low, present))
            if scale == 1:  # most blocks: known from their first chunk
                break
    width = width_of((high - low) // scale)
    return _offsets(pieces(), low, scale, width, bitmap), [nulls, low, high, width, scale]


def _offsets(
    pieces: Iterator[_Piece], low: int, scale: int, width: int, bitmap: bytes
) -> Iterator[bytes]:
    code = TYPECODES[width]
    for values, count, present in pieces:
        if values is None:
            yield bytes(width * count)
            continue
        differences = _differences(values, low, present)
        if scale > 1:
            differences = map(floordiv, differences, repeat(scale))
        yield _little(array(code, list(differences)))
    yield bitmap


CHUNK = 4096


def _differences(values: array[Any], low: int, present: bytes | None) -> Iterator[int]:
    """``value - low`` of each value (0 where ``present`` says null: a null's stored 0 would
    fall outside [low, high])."""
    differences: Iterator[int] = map(sub, values, repeat(low))
    return map(mul, differences, present) if present is not None else differences


def _little(values: array[Any]) -> bytes:
    if _BIG:
        values.byteswap()
    return values.tobytes()
