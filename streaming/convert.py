"""CSV to typed NDJSON: the sync's conversion of one file into a dataset directory.

The csv module reads header-keyed records (as ``csv.DictReader`` gives them) in batches of up
to 2,048 rows. Each batch is turned into columns, each column is typed as a whole
(``streaming.coerce``), the column statistics are fed the typed values (``streaming.tally``:
in a second process, on another CPU, for a file of 4 MiB or more), and the rows are written
as JSON arrays in the header's order, one per line, with their byte offsets in the row index
(``streaming.index``)::

    bytes ─ TextIOWrapper ─ csv.reader ─ batch ─ columns ─ typed columns ─┬─ rows.ndjson, rows.idx
                                                                        ├─ columns.json, .bin
                                                                        ├─ stats.json
                                                                        └─ sample.ndjson

The columns (``streaming.column_store``) are the same values in blocks of one column each, for
the questions that read a few columns of many rows.

Rows are stored as arrays rather than objects: the file is about 40% smaller, written twice
as fast, and the column names live once in the metadata. The API turns them back into objects.

Rules for awkward input (README lists them for users):

- UTF-8 unless the upload names an encoding; a UTF-16 or UTF-32 byte-order mark is honoured.
- The first record is the header. Names are stripped of surrounding space; an empty name
  becomes ``column_N`` (N its 1-based position); a repeated name gets ``_2``, ``_3``… .
- Blank lines are skipped. A short row is padded with nulls. Extra fields that are empty
  (trailing delimiters) are dropped; an extra non-empty field fails the sync, naming the line.
- Bytes that are not valid in the encoding fail the sync, naming the line. So does a record the
  csv module cannot read (a quote left open, text after a closing quote, a field longer than
  the field limit), naming the line the record starts on.
- A column's type comes from the first batch; a later value that does not fit widens it. Only a
  column that held nulls alone widens in place; any other widening restarts the conversion with
  the wider type, so every value of a column always has the column's type.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from streaming import coerce
from streaming.column_store import FORMAT as COLUMNS_FORMAT
from streaming.column_store import ColumnWriter
from streaming.errors import BadRequest, InvalidCSV
from streaming.index import RowWriter
from streaming.sketches import Reservoir
from streaming.stats import ColumnStats
from streaming.tally import PARALLEL_BYTES, Tally, TallyFailed, open_tally

log = logging.getLogger("rillet.sync")
BATCH_ROWS = 2048
BATCH_BYTES = 4 << 20  # smaller batches when rows are wide, so memory stays bounded
# orjson gives each encoded row a 4 KiB buffer, however short the row: encode and write a few
# hundred at a time (measured: 2x faster than a whole batch, and 16 MiB less memory).
WRITE_ROWS = 256
SAMPLE_ROWS = 1000
HEAD_BYTES = 65536
DELIMITERS = ",;\t|"
FIELD_LIMIT = 128 * 1024

ROWS_FILE = "rows.ndjson"
INDEX_FILE = "rows.idx"
STATS_FILE = "stats.json"
SAMPLE_FILE = "sample.ndjson"

Progress = Callable[[int, int], None]  # (bytes read, rows written)

# Longest first: the UTF-32 little-endian mark begins with UTF-16's.
WIDE_ENCODINGS = ("utf-16", "utf-32")  # their text is full of NUL bytes
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Conversion:
    """What a finished conversion learned about the file."""

    rows: int
    columns: list[dict[str, Any]]  # [{"name", "type", "nulls"}], in the header's order
    delimiter: str
    encoding: str
    restarts: int
    columns_format: int | None  # the format of columns.json/.bin, None when not written


def resolve_encoding(name: str | None) -> str:
    """The codec's canonical name; BadRequest for an unknown one."""
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:
        raise BadRequest(f"unknown encoding {name!r}", code="bad_encoding") from None


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` announces, if any."""
    for mark, name in BOMS:
        if head.startswith(mark):
            return name
    return None


def announces_wide_text(head: bytes) -> bool:
    """Whether a file starting with ``head`` announces UTF-16 or UTF-32 text by its BOM."""
    return bom_encoding(head) in WIDE_ENCODINGS


def _announced_encoding(source: Path) -> str | None:
    """UTF-16 or UTF-32 when the file starts with their byte-order mark (UTF-8's is read by
    the default codec anyway)."""
    with open(source, "rb") as f:
        head = f.read(4)
    return bom_encoding(head) if announces_wide_text(head) else None


def convert_csv(
    source: Path,
    out_dir: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    field_limit: int = FIELD_LIMIT,
    seed: int = 0,
    parallel: bool | None = None,
    columns: bool = True,
) -> Conversion:
    """Convert ``source`` into ``out_dir`` (which must exist); raises InvalidCSV.

    ``parallel`` keeps the column statistics in a second process (``streaming.tally``); by
    default it does for files of PARALLEL_BYTES or more. ``columns`` writes the columnar
    shape beside the rows (``streaming.column_store``).

    >>> convert_csv(Path("flights.csv"), Path("out"))  # doctest: +SKIP
    Conversion(rows=1000000, columns=[{'name': 'carrier', 'type': 'string', ...}, ...], ...)
    """
    codec = resolve_encoding(encoding or _announced_encoding(source))
    if delimiter is not None and len(delimiter) != 1:
        raise BadRequest(
            f"delimiter must be a single character, not {delimiter!r}", code="bad_parameter"
        )
    csv.field_size_limit(field_limit)
    if parallel is None:
        parallel = source.stat().st_size >= PARALLEL_BYTES
    hints: dict[int, str] = {}
    restarts = 0
    with _collector_paused():
        while True:
            try:
                run = _Run(
                    source, out_dir, delimiter, codec, hints, progress, seed, parallel, columns
                )
                return run.convert(restarts)
            except _Widen as widen:
                hints = widen.hints
                restarts += 1
            except TallyFailed as failed:
                # The statistics process died (killed, out of memory): the pass is done again
                # with the statistics in this process, slower but whole.
                log.warning("%s; converting %s again in one process", failed, source.name)
                parallel = False


class _Widen(Exception):
    """A column needs a wider type than the rows already written: start again."""

    def __init__(self, hints: dict[int, str]) -> None:
        self.hints = hints


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A batch holds thousands of fresh lists; the cyclic collector would walk them over and
    # over (measured: a third of the read time). Reference counting frees them all the same.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Run:
    """One pass over the file with a fixed set of type hints."""

    def __init__(
        self,
        source: Path,
        out_dir: Path,
        delimiter: str | None,
        codec: str,
        hints: dict[int, str],
        progress: Progress | None,
        seed: int,
        parallel: bool,
        columns: bool = True,
    ) -> None:
        self.source = source
        self.parallel = parallel
        self.out_dir = out_dir
        self.delimiter = delimiter
        self.codec = codec
        self.hints = hints
        self.progress = progress
        self.seed = seed
        self.columns = columns

    def convert(self, restarts: int) -> Conversion:
        python_codec = "utf-8-sig" if self.codec == "utf-8" else self.codec
        with open(self.source, "rb") as raw:
            head = raw.read(HEAD_BYTES)
            raw.seek(0)
            delimiter = self.delimiter or sniff_delimiter(head, python_codec)
            self.python_codec, self.delimiter_used = python_codec, delimiter
            text = io.TextIOWrapper(raw, encoding=python_codec, errors="strict", newline="")
            reader = csv.reader(text, delimiter=delimiter, strict=True)
            try:
                names = self._header(reader)
                columns = self._body(reader, raw, names)
            except UnicodeDecodeError as exc:
                line = _line_of_bad_bytes(self.source, python_codec)
                raise InvalidCSV(
                    f"line {line}: the file is not valid {self.codec} ({exc.reason}); "
                    "if it is Latin-1 or Windows-1252, upload it again with ?encoding=cp1252",
                    line=line,
                    code="bad_encoding",
                ) from None
            except csv.Error as exc:
                # The reader stops where the record broke; the line worth naming is where the
                # record began (as for a ragged row): an unclosed quote swallows the lines
                # after it until the end of the file or the field limit.
                end = reader.line_num
                found = _line_of_record(self.source, python_codec, delimiter, None)
                line = found if found is not None else end
                hint = f"; the record runs on to line {end} (a stray or unclosed quote?)"
                message = f"line {line}: {exc}" + (hint if end > line else "")
                raise InvalidCSV(message, line=line) from None
        return Conversion(
            rows=self.rows,
            columns=columns,
            delimiter=delimiter,
            encoding=self.codec,
            restarts=restarts,
            columns_format=COLUMNS_FORMAT if self.columns else None,
        )

    def _header(self, reader: Any) -> list[str]:
        for records, record in enumerate(reader, start=1):
            if record:
                self.header_records = records  # blank lines above the header are records too
                return header_names(record)
        raise InvalidCSV("the file has no header row", code="empty_file")

    def _body(self, reader: Any, raw: Any, names: list[str]) -> list[dict[str, Any]]:
        width = len(names)
        kinds: list[str | None] = [self.hints.get(i) for i in range(width)]
        firsts: list[Any] = [None] * width  # each column's first value: None until one is seen
        tally = open_tally(self.parallel)
        try:
            writer = RowWriter(self.out_dir / ROWS_FILE, self.out_dir / INDEX_FILE)
        except BaseException:
            tally.abort()
            raise
        # A restart (_Widen, TallyFailed) makes a new writer, which truncates what this pass
        # wrote.
        try:
            blocks = ColumnWriter(self.out_dir, width) if self.columns else None
        except BaseException:
            tally.abort()
            writer.abort()
            raise
        sample = Reservoir(SAMPLE_ROWS, seed=self.seed, keep=_compact)
        records_before = self.header_records  # records read so far, the header included
        batch_rows = BATCH_ROWS
        try:
            while batch := list(islice(reader, batch_rows)):
                rows = self._rectangular(batch, width, records_before)
                records_before += len(batch)
                if rows:
                    typed = [
                        self._column(j, column, kinds, firsts, tally)
                        for j, column in enumerate(zip(*rows))
                    ]
                    tally.end_batch()
                    if blocks is not None:
                        blocks.add(typed, kinds)
                    rows_typed = zip(*typed)
                    while lines := list(map(orjson.dumps, islice(rows_typed, WRITE_ROWS))):
                        writer.write(lines)
                        sample.update(lines)
                position = raw.tell()
                batch_rows = _next_batch_rows(position, records_before)
                if self.progress is not None:
                    self.progress(position, writer.rows)
            found = tally.results()
        except BaseException:
            tally.abort()
            writer.abort()
            if blocks is not None:
                blocks.abort()
            raise
        writer.close()
        if blocks is not None:
            blocks.close()
        self.rows = writer.rows
        _write(self.out_dir / SAMPLE_FILE, b"".join(line + b"\n" for line in sample.items))
        columns, results = [], {}
        for j, name in enumerate(names):
            result = found.get(j) or ColumnStats(kinds[j] or "null").result()
            results[name] = result
            columns.append({"name": name, "type": result["type"], "nulls": result["nulls"]})
        _write(self.out_dir / STATS_FILE, orjson.dumps(results))
        return columns

    def _column(
        self, j: int, raw: Sequence[str], kinds: list[str | None], firsts: list[Any], tally: Tally
    ) -> list[Any]:
        """Type column j of a batch, widening its type if it must; feed its statistics."""
        kind = kinds[j] or coerce.infer(raw)
        try:
            values, present = coerce.convert(kind, raw)
            if kind == "datetime" and present:
                _same_offset_style(present[0], firsts[j])
        except coerce.Mismatch:
            kind = coerce.join(kind, coerce.infer(raw))
            if firsts[j] is not None:  # typed values of the old type are written: start over
                hints = {i: k for i, k in enumerate(kinds) if k is not None}
                hints[j] = kind if kind != kinds[j] else "string"
                raise _Widen(hints) from None
            values, present = coerce.convert(kind, raw)
        kinds[j] = kind
        if firsts[j] is None and present:
            firsts[j] = present[0]
        tally.update(j, kind, present, len(raw) - len(present))
        return values

    def _rectangular(
        self, batch: list[list[str]], width: int, records_before: int
    ) -> list[list[str]]:
        """The batch's rows, each of exactly ``width`` fields (see the module's rules)."""
        if all(map(width.__eq__, map(len, batch))):
            return batch
        rows = []
        for i, row in enumerate(batch):
            size = len(row)
            if size == width:
                rows.append(row)
            elif size == 0:
                continue  # a blank line
            elif size < width:
                rows.append(row + [""] * (width - size))
            elif any(row[width:]):
                line = _line_of_record(
                    self.source, self.python_codec, self.delimiter_used, records_before + i
                )
                raise InvalidCSV(
                    f"line {line}: {size} fields, but the header has {width}",
                    line=line,
                    code="ragged_row",
                )
            else:
                rows.append(row[:width])
        return rows


def header_names(record: Sequence[str]) -> list[str]:
    """Column names from a header record: stripped, never empty, never repeated."""
    names = [name.strip() or f"column_{i}" for i, name in enumerate(record, start=1)]
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def sniff_delimiter(head: bytes, codec: str) -> str:
    """The delimiter of the file's first lines (one of ``DELIMITERS``), else a comma."""
    text = head.decode(codec, errors="replace")
    lines = text.splitlines(keepends=True)[:50]
    if len(lines) > 1 and len(head) == HEAD_BYTES:
        lines.pop()  # probably cut short
    try:
        return csv.Sniffer().sniff("".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _same_offset_style(value: str, earlier: str | None) -> None:
    """Raise Mismatch if a batch of datetimes and the earlier ones differ in having an offset."""
    if earlier is not None and value.endswith("Z") != earlier.endswith("Z"):
        raise coerce.Mismatch("datetimes with and without an offset")


def _next_batch_rows(position: int, records: int) -> int:
    """Rows per batch so that a batch holds about BATCH_BYTES of text."""
    average = max(1, position // max(1, records))
    return max(64, min(BATCH_ROWS, BATCH_BYTES // average))


def _line_of_bad_bytes(source: Path, codec: str) -> int:
    """The 1-based line holding the first byte sequence that ``codec`` cannot decode."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line = 1
    with open(source, "rb") as f:
        while chunk := f.read(HEAD_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.object is what the decoder tried: without a BOM it skipped, with the
                # start of a character the previous chunk cut short.
                return line + exc.object.count(b"\n", 0, max(0, exc.start))
            line += chunk.count(b"\n")
    return line


def _line_of_record(source: Path, codec: str, delimiter: str, record: int | None) -> int | None:
    """The 1-based line where record number ``record`` (0 is the header) starts, or with None
    the record the csv module cannot read; None if the file has no such record."""
    with open(source, encoding=codec, newline="") as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        end_of_previous = 0
        try:
            for i, _ in enumerate(reader):
                if i == record:
                    return end_of_previous + 1
                end_of_previous = reader.line_num
        except csv.Error:
            return end_of_previous + 1 if record is None else None
        except UnicodeDecodeError:
            return None
    return end_of_previous + 1 if record is not None else None


def _compact(line: bytes) -> bytes:
    """A copy of an encoded row in a buffer of its own size (see WRITE_ROWS)."""
    return bytes(memoryview(line))


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
