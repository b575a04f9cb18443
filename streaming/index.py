"""The row index: where each row of a dataset's NDJSON file starts, found in O(1).

``rows.idx`` holds ``rows + 1`` little-endian unsigned 64-bit byte offsets: the start of each
row, then the file's length, so the bytes of rows ``[a, b)`` are ``offsets[a]:offsets[b]``
and a page at any depth costs two 8-byte reads and one read of the page itself.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import add
from pathlib import Path
from typing import BinaryIO

_OFFSET = struct.Struct("<Q")


class RowWriter:
    """Appends rows (encoded JSON lines without their newline) and their offsets."""

    def __init__(self, rows_path: Path, index_path: Path) -> None:
        self._rows: BinaryIO = open(rows_path, "wb")
        self._index: BinaryIO = open(index_path, "wb")
        self.rows = 0
        self.position = 0

    def write(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        starts = array("Q", accumulate(map(add, map(len, lines), repeat(1)), initial=self.position))
        self.position = starts.pop()
        if sys.byteorder == "big":
            starts.byteswap()
        self._index.write(starts.tobytes())
        self._rows.write(b"\n".join(lines))
        self._rows.write(b"\n")
        self.rows += len(lines)

    def close(self) -> None:
        """Write the closing offset and make both files durable."""
        self._index.write(_OFFSET.pack(self.position))
        for f in (self._rows, self._index):
            f.flush()
            os.fsync(f.fileno())
            f.close()

    def abort(self) -> None:
        for f in (self._rows, self._index):
            f.close()


class RowIndex:
    """Reads row offsets from an open ``rows.idx`` file descriptor: of the first ``rows`` rows
    (a version's own; the file may go on with an appended version's), or of all of them."""

    def __init__(self, fd: int, rows: int | None = None) -> None:
        self._fd = fd
        in_file = os.fstat(fd).st_size // _OFFSET.size - 1
        self.rows = in_file if rows is None else min(rows, in_file)

    def offset(self, row: int) -> int:
        """Byte offset where ``row`` starts (``rows`` gives the end of the file)."""
        data = os.pread(self._fd, _OFFSET.size, row * _OFFSET.size)
        return _OFFSET.unpack(data)[0]

    def span(self, start: int, stop: int) -> tuple[int, int]:
        """Byte range of rows ``[start, stop)``, clamped to the dataset."""
        start = max(0, min(start, self.rows))
        stop = max(start, min(stop, self.rows))
        return self.offset(start), self.offset(stop)
