"""Reading a ready dataset's columns (``streaming.column_store`` has the format), a block at a time.

``open_columns(dataset)`` gives a ``ColumnReader``, or None when the dataset has no columns
(synced before they existed): then the row scan answers. A reader checks what it can before
answering: columns.json must agree with the dataset's metadata and columns.bin must have the
size it describes, and every segment read must match its crc32, else ``ColumnsDamaged`` (a
500) is raised before any answer is given, so a caller may fall back to the rows instead.

Masks of rows are Python integers with one byte per row of a block, ``0x01`` where the row is
kept (little-endian: row i is byte i). Built from 0/1 bytes by ``int.from_bytes``, combined by
``&``, ``|`` and ``^`` over the whole block in C, counted by ``int.bit_count``, and turned
back into 0/1 bytes for ``itertools.compress``.
"""

from __future__ import annotations

import os
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, repeat
from operator import add, mul
from typing import Any

import orjson

from streaming import column_store as fmt
from streaming.errors import ColumnsDamaged
from streaming.read import Dataset


@lru_cache(maxsize=64)
def ones(rows: int) -> int:
    """The mask keeping every row of a block of ``rows`` rows."""
    return int.from_bytes(b"\x01" * rows, "little")


def to_mask(flags: bytes) -> int:
    return int.from_bytes(flags, "little")


def to_flags(mask: int, rows: int) -> bytes:
    return mask.to_bytes(rows, "little")


@dataclass(frozen=True)
class Segment:
    """One column's values in one block, as stored."""

    rows: int
    nulls: int
    low: Any
    high: Any
    width: int
    scale: int
    values: bytes  # width * rows bytes (empty when width is 0 or all are null)
    null_flags: bytes | None  # 0/1 per row, 1 where null; None when no row is null
    floating: bool  # a number column's floats, not integers

    @property
    def all_null(self) -> bool:
        return self.nulls == self.rows

    def present(self) -> int:
        """The mask of the rows that are not null."""
        full = ones(self.rows)
        if self.null_flags is None:
            return 0 if self.all_null else full
        return full ^ to_mask(self.null_flags)

    def stored(self) -> Any:
        """The stored numbers: offsets (integers), floats or codes; a null holds 0 or low."""
        if self.width == 0:
            return bytes(self.rows)
        code = "d" if self.floating else fmt.TYPECODES[self.width]
        numbers = array(code, self.values)
        if fmt._BIG:
            numbers.byteswap()
        return numbers if self.width > 1 else self.values

    def integers(self) -> Any:
        """The values of an integral column as integers (low where null)."""
        stored = self.stored()
        if self.scale > 1:
            stored = map(mul, stored, repeat(self.scale))
        return list(map(add, stored, repeat(self.low)))


class ColumnReader:
    """The columns of one open dataset. ``segment(position, block)`` reads one, checked."""

    def __init__(self, dataset: Dataset, described: dict[str, Any], fd: int) -> None:
        self.dataset = dataset
        self.rows: int = described["rows"]
        self.blocks: list[tuple[int, int]] = [(b[0], b[1]) for b in described["blocks"]]
        self.columns: list[dict[str, Any]] = described["columns"]
        self.kinds: list[str] = [c["type"] for c in dataset.meta["columns"]]
        self._fd = fd
        self._dictionaries: dict[int, list[str]] = {}
        self._cache: dict[tuple[int, int], Segment] = {}
        self._check()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> ColumnReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def coded(self, position: int) -> bool:
        """Whether column ``position`` is stored here (an uncoded string column is not)."""
        return bool(self.columns[position]["coded"])

    def zulu(self, position: int) -> bool:
        return bool(self.columns[position].get("zulu"))

    def _check(self) -> None:
        meta = self.dataset.meta
        kinds = [c["type"] for c in self.columns]
        end = fmt.extent({"columns": self.columns})
        covered = sum(rows for _, rows in self.blocks)
        if (
            self.rows != meta["rows"]
            or covered != self.rows
            or kinds != self.kinds
            or any(c["coded"] and len(c["blocks"]) != len(self.blocks) for c in self.columns)
            or os.fstat(self._fd).st_size < end  # an appended version may write after it
        ):
            raise ColumnsDamaged(f"the column files of dataset {self.dataset.id!r} are damaged")

    def _read(self, offset: int, length: int, crc: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length or zlib.crc32(data) != crc:
            raise ColumnsDamaged(f"a column segment of dataset {self.dataset.id!r} is damaged")
        return data

    def segment(self, position: int, block: int) -> Segment:
        """Column ``position`` in block ``block``, read once while the block is current."""
        key = (position, block)
        found = self._cache.get(key)
        if found is not None:
            return found
        if any(b != block for _, b in self._cache):
            self._cache.clear()  # one block at a time: memory stays one block's
        offset, length, crc, nulls, low, high, width, scale = self.columns[position]["blocks"][
            block
        ]
        rows = self.blocks[block][1]
        data = self._read(offset, length, crc) if length else b""
        size = 0 if nulls == rows else width * rows
        flags = fmt.unpack_bits(data[size:], rows) if 0 < nulls < rows else None
        if len(data) != size + (-(-rows // 8) if flags is not None else 0):
            raise ColumnsDamaged(f"a column segment of dataset {self.dataset.id!r} is damaged")
        floating = self.kinds[position] == "number"
        found = Segment(rows, nulls, low, high, width, scale, data[:size], flags, floating)
        self._cache[key] = found
        return found

    def dictionary(self, position: int) -> list[str]:
        """A coded string column's values, in code order."""
        found = self._dictionaries.get(position)
        if found is None:
            offset, length, crc = self.columns[position]["dictionary"]
            found = self._dictionaries[position] = orjson.loads(self._read(offset, length, crc))
        return found

    def values(self, position: int, block: int, mask: int | None = None) -> list[Any]:
        """The typed values (as the rows hold them) of one column in one block, at the rows
        ``mask`` keeps (all when None); None for nulls."""
        segment = self.segment(position, block)
        keep = to_flags(mask, segment.rows) if mask is not None else None
        if segment.all_null:
            return [None] * (segment.rows if keep is None else keep.count(1))
        kind = self.kinds[position]
        if kind == "string":
            numbers: Any = segment.stored()
        elif kind == "number":
            numbers = segment.stored()
        else:
            numbers = segment.integers()
        if keep is not None:
            numbers = compress(numbers, keep)
        decoded = self._decode(position, kind, list(numbers))
        if segment.null_flags is None:
            return decoded
        nulls = segment.null_flags if keep is None else bytes(compress(segment.null_flags, keep))
        for i in compress(range(len(decoded)), nulls):  # a statement per null, not per row
            decoded[i] = None
        return decoded

    def _decode(self, position: int, kind: str, numbers: list[Any]) -> list[Any]:
        """Stored numbers as typed values: decoded once per distinct number where costly."""
        if kind in ("integer", "number"):
            return numbers
        if kind == "boolean":
            return list(map(bool, numbers))
        if kind == "string":
            return list(map(self.dictionary(position).__getitem__, numbers))
        distinct = set(numbers)
        if kind == "date":
            texts = dict(zip(distinct, map(fmt.date_text, distinct)))
        else:
            zulu = self.zulu(position)
            texts = {n: fmt.datetime_text(n, zulu) for n in distinct}
        return list(map(texts.__getitem__, numbers))


def open_columns(dataset: Dataset) -> ColumnReader | None:
    """The dataset's columns, or None if it has none (synced before columns existed); raises
    ColumnsDamaged when they exist but cannot be trusted."""
    if dataset.meta.get("columns_format") != fmt.FORMAT or dataset.column_fds is None:
        return None
    data_fd, meta_fd = dataset.column_fds
    fd = os.dup(data_fd)  # the reader's own, closed with it; the dataset keeps its own
    try:
        described = orjson.loads(os.pread(meta_fd, os.fstat(meta_fd).st_size, 0))
        if described.get("format") != fmt.FORMAT:
            raise ColumnsDamaged(f"dataset {dataset.id!r} has columns of an unknown format")
        return ColumnReader(dataset, described, fd)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        os.close(fd)
        raise ColumnsDamaged(f"the column files of dataset {dataset.id!r} are damaged") from exc
    except BaseException:
        os.close(fd)
        raise
